#include <kiln/error.h>

namespace kiln {

const char* to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::Config:
      return "config error";
    case ErrorKind::Plugin:
      return "plugin error";
    case ErrorKind::Data:
      return "data error";
    case ErrorKind::Stage:
      return "stage failed";
    case ErrorKind::Gate:
      return "gate failed";
    case ErrorKind::Interrupted:
      return "interrupted";
    case ErrorKind::Internal:
      return "internal error";
  }
  return "error";
}

int exit_code(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::Config:
      return 2;
    case ErrorKind::Stage:
    case ErrorKind::Data:
      return 3;
    case ErrorKind::Gate:
      return 4;
    case ErrorKind::Plugin:
      return 5;
    case ErrorKind::Interrupted:
      return 130;
    case ErrorKind::Internal:
      return 1;
  }
  return 1;
}

Error::Error(ErrorKind kind, const std::string& message, std::source_location where)
    : std::runtime_error(message),
      kind_(kind),
      raised_at_(std::string(where.file_name()) + ":" + std::to_string(where.line())) {}

Error::Error(ErrorKind kind, const std::string& message, RaisedAt raised_at)
    : std::runtime_error(message), kind_(kind), raised_at_(std::move(raised_at.value)) {}

// Out-of-line destructors give each class one home for its vtable and typeinfo, so
// an exception thrown inside a plugin is caught by type in the engine.
Error::~Error() = default;
ConfigError::~ConfigError() = default;
PluginError::~PluginError() = default;
DataError::~DataError() = default;
StageError::~StageError() = default;
GateError::~GateError() = default;
InterruptedError::~InterruptedError() = default;
InternalError::~InternalError() = default;

void rethrow_with_context(const Error& error, std::string_view context) {
  const std::string message = std::string(context) + error.what();
  RaisedAt origin{error.raised_at()};
  switch (error.kind()) {
    case ErrorKind::Config:
      throw ConfigError(message, std::move(origin));
    case ErrorKind::Plugin:
      throw PluginError(message, std::move(origin));
    case ErrorKind::Data:
      throw DataError(message, std::move(origin));
    case ErrorKind::Stage:
      throw StageError(message, std::move(origin));
    case ErrorKind::Gate:
      throw GateError(message, std::move(origin));
    case ErrorKind::Interrupted:
      throw InterruptedError(message, std::move(origin));
    case ErrorKind::Internal:
      break;
  }
  throw InternalError(message, std::move(origin));
}

}  // namespace kiln
