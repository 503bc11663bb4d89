// Typed errors. Library code throws these; only the CLI turns them into one line
// on stderr and an exit code. The message is the user-level text ("file:line:col:
// what is wrong"); raised_at() is the check in kiln's code that raised it, for
// debug logs.
#pragma once

#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

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

// Where an error was raised, as text; used to keep it when an error is re-raised
// with more context.
struct RaisedAt {
  std::string value;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message,
        std::source_location where = std::source_location::current());
  Error(ErrorKind kind, const std::string& message, RaisedAt raised_at);
  ~Error() override;

  ErrorKind kind() const noexcept { return kind_; }
  // "engine/src/core/fs.cpp:42". A copy, not a std::source_location: that points
  // into the raising library, which may be a plugin unloaded before the error is
  // reported.
  const std::string& raised_at() const noexcept { return raised_at_; }

 private:
  ErrorKind kind_;
  std::string raised_at_;
};

#define KILN_DEFINE_ERROR(Name, Kind)                                           \
  class Name : public Error {                                                   \
   public:                                                                      \
    explicit Name(const std::string& message,                                   \
                  std::source_location where = std::source_location::current()) \
        : Error(ErrorKind::Kind, message, where) {}                             \
    Name(const std::string& message, RaisedAt raised_at)                        \
        : Error(ErrorKind::Kind, message, std::move(raised_at)) {}              \
    ~Name() override;                                                           \
  };

KILN_DEFINE_ERROR(ConfigError, Config)
KILN_DEFINE_ERROR(PluginError, Plugin)
KILN_DEFINE_ERROR(DataError, Data)
KILN_DEFINE_ERROR(StageError, Stage)
KILN_DEFINE_ERROR(GateError, Gate)
KILN_DEFINE_ERROR(InterruptedError, Interrupted)
KILN_DEFINE_ERROR(InternalError, Internal)

#undef KILN_DEFINE_ERROR

// Throws an error of the same kind (and class) as `error`, its message prefixed
// with `context` (e.g. "stage 'train' (train): ").
[[noreturn]] void rethrow_with_context(const Error& error, std::string_view context);

}  // namespace kiln
