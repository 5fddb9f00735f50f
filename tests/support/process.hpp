// Running a real program (apr-run and friends) from a test and capturing what it printed.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace apr::test {

struct ProcessResult {
    int exit_code = -1;  // the exit status, or 128 + signal number when killed by a signal
    std::string out;     // stdout
    std::string err;     // stderr
};

// Runs `argv` (argv[0] is a path) with the current environment plus `env` (a value of "" unsets
// the variable), waits up to `timeout_s`, and returns what it printed. Never goes through a shell.
ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                          int timeout_s = 300);

// The lines of `text`, without their '\n'.
std::vector<std::string> lines_of(const std::string& text);

}  // namespace apr::test
