# Fuzz targets (tests/fuzz/fuzz_<name>.c). With -DORDERD_FUZZ=ON (clang)
# each links libFuzzer and `scripts/fuzz` fuzzes it; in every other build
# it links replay_main.c instead. Either way CTest's fuzz_replay_<name>
# runs it once over its seed corpus and its regression inputs.

set(ORDERD_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
file(GLOB ORDERD_FUZZ_SOURCES CONFIGURE_DEPENDS ${ORDERD_FUZZ_DIR}/fuzz_*.c)
set(ORDERD_FUZZ_TARGETS "")
foreach(f ${ORDERD_FUZZ_SOURCES})
  get_filename_component(n ${f} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" n ${n})
  list(APPEND ORDERD_FUZZ_TARGETS ${n})
endforeach()

foreach(t ${ORDERD_FUZZ_TARGETS})
  if(ORDERD_FUZZ)
    add_executable(fuzz_${t} ${ORDERD_FUZZ_DIR}/fuzz_${t}.c)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(fuzz_${t} ${ORDERD_FUZZ_DIR}/fuzz_${t}.c
      ${ORDERD_FUZZ_DIR}/replay_main.c)
  endif()
  target_link_libraries(fuzz_${t} PRIVATE orderd_core)
  # -runs=0: libFuzzer executes the inputs it is given and stops;
  # replay_main ignores the option. libFuzzer refuses a missing directory,
  # and git keeps no empty one: a target without regressions has none
  # (scripts/build configures again, so a new one is picked up).
  set(dirs ${ORDERD_FUZZ_DIR}/corpus/${t})
  if(EXISTS ${ORDERD_FUZZ_DIR}/regressions/${t})
    list(APPEND dirs ${ORDERD_FUZZ_DIR}/regressions/${t})
  endif()
  add_test(NAME fuzz_replay_${t} COMMAND fuzz_${t} -runs=0 ${dirs})
  set_tests_properties(fuzz_replay_${t} PROPERTIES LABELS fuzz TIMEOUT 300)
  list(APPEND ORDERD_FUZZ_BINARIES fuzz_${t})
endforeach()

# `cmake --build DIR --target fuzz`: only the fuzz targets and what they
# need, not the whole tree
add_custom_target(fuzz DEPENDS ${ORDERD_FUZZ_BINARIES})
