#pragma once

namespace tributary {

// The `tributary` command line (docs/cli.md). Returns the process exit code.
int RunCli(int argc, char** argv);

}  // namespace tributary
