#include "kvmx/test/suite.hpp"

int main(int argc, char** argv) { return kvmx::test::run_suite(argc, argv); }
