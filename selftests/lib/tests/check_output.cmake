# Run COMMAND (a ;-list), compare its stdout with GOLDEN and its status with EXPECTED_STATUS.
# Line numbers in "file.cpp:123:" and the test count in "1..N"/"N failed" of the missing-device
# golden are normalized, so source edits elsewhere do not break the check.
# The suite must not pick up a device from the caller's environment.
unset(ENV{KVMX_DEVICE})
execute_process(COMMAND ${COMMAND}
  OUTPUT_VARIABLE out
  RESULT_VARIABLE status
)
string(REGEX REPLACE "\\.cpp:[0-9]+:" ".cpp:N:" out "${out}")
string(REGEX REPLACE "\n1\\.\\.[0-9]+\n" "\n1..N\n" out "${out}")
string(REGEX REPLACE "0 passed, [0-9]+ failed" "0 passed, N failed" out "${out}")
string(REGEX REPLACE "# device [^\n]*" "# device (cell)" out "${out}")
file(READ "${GOLDEN}" golden)
if(NOT out STREQUAL golden)
  message(FATAL_ERROR "output differs from ${GOLDEN}:\n--- got ---\n${out}--- wanted ---\n${golden}")
endif()
if(NOT status STREQUAL EXPECTED_STATUS)
  message(FATAL_ERROR "exit status ${status}, wanted ${EXPECTED_STATUS}")
endif()
