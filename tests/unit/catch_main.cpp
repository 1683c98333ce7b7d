// The one translation unit that holds Catch2's main(); every unit-test
// executable links it so test files stay small.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
