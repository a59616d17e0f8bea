"""What the tests share that is not a fixture: the conftest files hold only fixtures and hooks,
and every test imports its helpers from here (tests/unit/test_no_conftest_imports.py sees to it).

- ``scenarios``: driving the emulator's state machine and judging the world it leaves (start,
  finished, output, replacements, assert_safe, fence_cannot_be_proven, rule_watches).
- ``hooks``: the RMS hooks run as an instance runs them (Served, serve, closed_port, run_hook,
  write_config); the fixtures that serve an emulator are in tests/hooks/conftest.py.
- ``records``: the unit tests' application record and table name (make_record, TABLE); the moto
  fixtures that use them are in tests/unit/conftest.py.
- ``campaign``: the CI seeds and how they are judged (SEEDS, FIRST_HALF, SECOND_HALF,
  FOUND_BEFORE, assert_no_seed_breaks_a_guarantee).
"""
