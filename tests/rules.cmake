# Conformance: one test per rule G1..G66 of docs/semantics.md (ctest
# names are the rule ids), and the misuse tests. G47, G48 and G65 have no C
# form and no test: docs/conformance.md says why.
cogen_test(test_rules test_rules.c CASES
  G1 G2 G3 G4 G5 G6 G7 G8 G9 G10
  G11 G12 G13 G14 G15 G16 G17 G18 G19 G20
  G21 G22 G23 G23_caller_context G24 G25 G26 G27 G28 G29 G30
  G31 G32 G33 G34 G35 G36 G37 G38 G39 G40
  G41 G42 G43 G44 G45 G46 G49 G50
  G51 G52 G53 G54 G55 G56 G57 G58 G59 G60
  G61 G62 G63 G64 G66)

# Misuse: each wrong call has a defined answer (include/cogen.h) and a test.
cogen_test(test_misuse test_misuse.c CASES
  misuse_send_null misuse_next_null misuse_throw_null misuse_close_null
  misuse_iter_next_null misuse_state_null misuse_throw_none misuse_raise_null
  misuse_reraise_nothing misuse_resume_running misuse_resume_closed
  misuse_other_thread misuse_free_running misuse_free_running_return
  misuse_free_delegated misuse_yield_main misuse_yield_wrong_gen
  misuse_new_null_fn misuse_yield_from_null misuse_yield_from_self
  misuse_yield_from_running misuse_yield_from_closed misuse_uncaught_main
  misuse_try_return misuse_try_return_in_gen misuse_yield_from_new_null_fn misuse_unraisable_hook_raises
  misuse_free_twice misuse_send_after_free misuse_stale_handle_debug misuse_free_running_resumer)
