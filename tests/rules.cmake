# Conformance: one test per rule G1..G66 of docs/semantics.md (ctest
# names are the rule ids, the case names of test_rules.c's table), and the
# misuse tests (misuse_*, test_misuse.c's table). G47, G48 and G65 have no C
# form and no test: docs/conformance.md says why.
cogen_test(test_rules test_rules.c)

# Misuse: each wrong call has a defined answer (include/cogen.h) and a test.
cogen_test(test_misuse test_misuse.c)
