# Conformance: one test per rule G1..G66 of shared/semantics/SPEC.md (ctest
# names are the rule ids), and the misuse tests. G47, G48 and G65 have no C
# form and no test: docs/conformance.md says why.
cogen_test(test_rules test_rules.c CASES
  G1 G2 G3 G4 G5 G6 G7 G8 G9 G10
  G11 G12 G13 G14 G15 G16 G17 G18 G19 G20
  G21 G22 G23 G24 G25 G26 G27 G28 G29 G30
  G31 G32 G33 G34 G35 G36 G37 G38 G39 G40
  G41 G42 G43 G44 G45 G46 G49 G50
  G51 G52 G53 G54 G55 G56 G57 G58 G59 G60
  G61 G62 G63 G64 G66)
