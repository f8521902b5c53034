# Test registration: unit tests (check, pure logic) and integration tests
# (check, against the real Postgres and Kafka that scripts/test starts).

if(NOT CHECK_FOUND)
  message(FATAL_ERROR "the check unit test library is missing: apt-get install check")
endif()

# itest: the integration harness (fresh database, apply a command, read
# back its result event)
add_library(orderd_itest STATIC tests/integration/itest.c
  tests/integration/ktest.c)
target_link_libraries(orderd_itest PUBLIC orderd_worker PkgConfig::CHECK)

function(orderd_unit_test name)
  add_executable(unit_${name} tests/unit/test_${name}.c)
  target_link_libraries(unit_${name} PRIVATE orderd_core PkgConfig::CHECK)
  add_test(NAME unit_${name} COMMAND unit_${name})
  set_tests_properties(unit_${name} PROPERTIES LABELS unit
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=30")
endfunction()

# integration tests may need the orderd binary (worker runs, CLI checks)
function(orderd_integration_test file)
  get_filename_component(name ${file} NAME_WE)
  add_executable(it_${name} ${file})
  target_link_libraries(it_${name} PRIVATE orderd_itest)
  add_dependencies(it_${name} orderd)
  add_test(NAME it_${name} COMMAND it_${name})
  set_tests_properties(it_${name} PROPERTIES LABELS integration
    ENVIRONMENT "ORDERD_BIN=$<TARGET_FILE:orderd>;CK_DEFAULT_TIMEOUT=300;ORDERD_TEST_NAME=${name};ORDERD_TEST_BUILD_DIR=${CMAKE_BINARY_DIR};ORDERD_TEST_CMAKE=${CMAKE_COMMAND}"
    TIMEOUT 600 FIXTURES_REQUIRED contract_events)
endfunction()

file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(f ${UNIT_TESTS})
  get_filename_component(n ${f} NAME_WE)
  string(REGEX REPLACE "^test_" "" n ${n})
  orderd_unit_test(${n})
endforeach()

file(GLOB INTEGRATION_TESTS CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/tests/integration/[0-9][0-9][0-9][0-9]_*.c
  ${CMAKE_SOURCE_DIR}/tests/fault/[0-9][0-9][0-9][0-9]_*.c)
foreach(f ${INTEGRATION_TESTS})
  orderd_integration_test(${f})
endforeach()

# The machine-readable contract (docs/contract/): the schemas, every
# example in docs/CONTRACT.md, the demo data and the AsyncAPI document; and,
# after every integration test (a fixture's cleanup runs last, also when
# ctest -R picks a few), every event those tests read, which the harness
# appends to files under $ORDERD_TEST_EVENTS_DIR (set by scripts/test).
find_program(PYTHON3 python3 REQUIRED)
set(CONTRACT_CHECK ${CMAKE_SOURCE_DIR}/tests/contract/check_contract.py)
add_test(NAME contract_docs COMMAND ${PYTHON3} ${CONTRACT_CHECK} docs)
set_tests_properties(contract_docs PROPERTIES LABELS unit)
add_test(NAME contract_events_reset COMMAND ${PYTHON3} ${CONTRACT_CHECK} reset)
set_tests_properties(contract_events_reset PROPERTIES
  FIXTURES_SETUP contract_events SKIP_RETURN_CODE 77)
add_test(NAME contract_events COMMAND ${PYTHON3} ${CONTRACT_CHECK} events)
set_tests_properties(contract_events PROPERTIES FIXTURES_CLEANUP contract_events
  SKIP_RETURN_CODE 77)

# deploy/: the Prometheus alert rules parse, and each fires on the series it
# is for and stays quiet on the others (promtool, Debian's prometheus
# package, which scripts/test installs). The systemd unit is verified as
# installed, by integration test 0780_install.
add_test(NAME deploy_alert_rules_check
  COMMAND promtool check rules ${CMAKE_SOURCE_DIR}/deploy/orderd-alerts.yml)
add_test(NAME deploy_alert_rules_test
  COMMAND promtool test rules ${CMAKE_SOURCE_DIR}/deploy/orderd-alerts.test.yml)
set_tests_properties(deploy_alert_rules_check deploy_alert_rules_test
  PROPERTIES LABELS unit)
