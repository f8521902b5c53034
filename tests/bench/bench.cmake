# Benchmark tools (scripts/bench): the load generator and result reader.
# Included from the top-level CMakeLists.txt; not a test.
add_executable(orderd_bench tests/bench/orderd_bench.c)
target_link_libraries(orderd_bench PRIVATE PkgConfig::RDKAFKA
  PkgConfig::JANSSON)
