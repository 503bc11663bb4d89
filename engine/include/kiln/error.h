// Typed errors. Library code throws these; only the CLI turns them into one line
// on stderr and an exit code. The message is the user-level text ("file:line:col:
// what is wrong"); where() is the engine check that raised it, for debug logs.
#pragma once

#include <source_location>
#include <stdexcept>
#include <string>

namespace kiln {

enum class ErrorKind {
  Config,       // the pipeline, an override, a parameter or a CLI argument is wrong
  Plugin,       // a plugin could not be loaded or registered
  Data,         // an input file is missing, truncated or malformed
  Stage,        // a stage failed while running
  Gate,         // an evaluation gate refused the model
  Interrupted,  // SIGINT/SIGTERM stopped the run
  Internal,     // a bug in kiln
};

const char* to_string(ErrorKind kind) noexcept;

// Process exit code of each kind; documented in README.md and docs/cli.md.
int exit_code(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message,
        std::source_location where = std::source_location::current());
  ~Error() override;

  ErrorKind kind() const noexcept { return kind_; }
  const std::source_location& where() const noexcept { return where_; }

 private:
  ErrorKind kind_;
  std::source_location where_;
};

#define KILN_DEFINE_ERROR(Name, Kind)                                          \
  class Name : public Error {                                                  \
   public:                                                                     \
    explicit Name(const std::string& message,                                  \
                  std::source_location where = std::source_location::current()) \
        : Error(ErrorKind::Kind, message, where) {}                            \
    ~Name() override;                                                          \
  };

KILN_DEFINE_ERROR(ConfigError, Config)
KILN_DEFINE_ERROR(PluginError, Plugin)
KILN_DEFINE_ERROR(DataError, Data)
KILN_DEFINE_ERROR(StageError, Stage)
KILN_DEFINE_ERROR(GateError, Gate)
KILN_DEFINE_ERROR(InterruptedError, Interrupted)
KILN_DEFINE_ERROR(InternalError, Internal)

#undef KILN_DEFINE_ERROR

}  // namespace kiln
