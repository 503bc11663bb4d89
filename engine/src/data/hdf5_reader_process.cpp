// The kiln side of kiln-hdf5-reader: finding the program, running it, and turning
// how it ended into a DataError. The program's side is hdf5_reader_main.cpp.
//
// The arrays come through the pipe as one line of JSON,
//   {"arrays": [{"name": "x", "dtype": "u8", "shape": [60000, 28, 28]}, ...]}
// and then each array's bytes in that order (C order, little-endian). A read that
// fails ends the program with exit 3 and one line on its standard error.
#include "data/hdf5_reader_process.h"

#include "data/file_identity.h"

#include <kiln/checked_size.h>
#include <kiln/child_program.h>
#include <kiln/error.h>

#include "data/hdf5_source.h"
#include "data/hdf5_support.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

namespace kiln::data::hdf5 {
namespace fs = std::filesystem;

std::atomic<bool> detail::in_reader_process{false};

namespace {

constexpr int kExitDataError = 3;
constexpr int kExitOutOfMemory = 5;
constexpr std::size_t kMaxHeaderBytes = 1 << 20;
// What the reader may use beyond the import budget: its libraries and HDF5's
// chunk caches.
constexpr std::uint64_t kReaderOverheadBytes = std::uint64_t{512} << 20;

std::chrono::milliseconds reader_timeout() {
  constexpr int kDefaultSeconds = 120;
  const char* text = std::getenv("KILN_HDF5_READER_TIMEOUT");
  if (text == nullptr) return std::chrono::seconds(kDefaultSeconds);
  const std::string_view value(text);
  double seconds = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (error != std::errc() || end != value.data() + value.size() || !(seconds > 0))
    throw ConfigError(
        fmt::format("KILN_HDF5_READER_TIMEOUT '{}': expected a positive number of seconds", value));
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

fs::path prefix_of(const fs::path& binary) { return binary.parent_path().parent_path(); }

// Throws the DataError (or InternalError) that says how the reader failed.
[[noreturn]] void report_failure(const fs::path& file, const fs::path& program,
                                 const kiln::ChildResult& result,
                                 std::chrono::milliseconds timeout) {
  const std::string reason = last_line(result.err);
  if (result.timed_out)
    throw DataError(fmt::format(
        "{}: reading it as HDF5 made no progress for {} s (kiln-hdf5-reader was stopped; "
        "KILN_HDF5_READER_TIMEOUT sets the limit): the file is damaged or not HDF5",
        file.string(), static_cast<double>(timeout.count()) / 1000));
  // SIGINT, SIGTERM and SIGHUP come from outside (Ctrl-C, scancel, a closed
  // terminal: the whole process group gets them), never from libhdf5 itself: the
  // run is being stopped, and the file is not to blame.
  if (result.signal == SIGINT || result.signal == SIGTERM || result.signal == SIGHUP)
    throw InterruptedError(fmt::format("{}: reading it was stopped by {} (kiln-hdf5-reader)",
                                       file.string(), kiln::signal_name(result.signal)));
  if (result.signal != 0)
    throw DataError(
        fmt::format("{}: libhdf5 crashed reading it ({} in kiln-hdf5-reader): the file is damaged",
                    file.string(), kiln::signal_name(result.signal)));
  if (result.exit_code == 127)
    throw InternalError(fmt::format("{}: cannot read HDF5 files without kiln-hdf5-reader: {}",
                                    file.string(), reason.empty() ? program.string() : reason));
  if (result.exit_code == kExitDataError && !reason.empty()) throw DataError(reason);
  if (result.exit_code == kExitOutOfMemory)
    throw DataError(fmt::format(
        "{}: reading it needed more memory than the {} bytes allowed (the import budget, "
        "KILN_IMPORT_MEMORY_BUDGET, plus {} MiB): the file is damaged or declares more than "
        "fits",
        file.string(), import_memory_budget(), kReaderOverheadBytes >> 20));
  throw DataError(fmt::format("{}: kiln-hdf5-reader failed reading it (exit {}){}", file.string(),
                              result.exit_code, reason.empty() ? "" : ": " + reason));
}

kiln::ChildResult run_reader(const fs::path& file, std::vector<std::string> arguments,
                             std::function<void(std::string_view)> on_output) {
  const fs::path program = reader_program();
  const std::chrono::milliseconds timeout = reader_timeout();
  std::vector<std::string> argv = {program.string(), "--memory",
                                   std::to_string(import_memory_budget() + kReaderOverheadBytes),
                                   "--"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  kiln::ChildOptions options;
  options.on_output = std::move(on_output);
  options.idle_timeout = timeout;
  kiln::ChildResult result = kiln::run_child(argv, options);
  if (result.exit_code != 0) report_failure(file, program, result, timeout);
  return result;
}

// Passes the reader's output to a sink as it arrives: the header line first,
// checked, then each array's bytes.
class ArrayReceiver {
 public:
  ArrayReceiver(fs::path file, const std::vector<std::string>& specs, ArraySink& sink)
      : file_(std::move(file)), specs_(specs), sink_(sink) {}

  void take(std::string_view piece) {
    while (!piece.empty()) {
      if (!header_done_) {
        piece = take_header(piece);
        continue;
      }
      if (current_ >= arrays_.size())
        throw DataError(file_.string() + ": kiln-hdf5-reader sent more bytes than it announced");
      const std::size_t n = std::min<std::size_t>(piece.size(), sizes_[current_] - received_);
      sink_.write(reinterpret_cast<const std::uint8_t*>(piece.data()), n);
      received_ += n;
      piece.remove_prefix(n);
      next_array();
    }
  }

  std::map<std::string, std::string> finish() {
    if (!header_done_ || current_ < arrays_.size())
      throw DataError(
          fmt::format("{}: kiln-hdf5-reader ended before sending every array", file_.string()));
    return std::move(converted_);
  }

 private:
  [[noreturn]] void malformed() const {
    throw DataError(file_.string() + ": kiln-hdf5-reader sent a malformed header");
  }

  std::string_view take_header(std::string_view piece) {
    const std::size_t newline = piece.find('\n');
    header_.append(piece.substr(0, newline));
    if (header_.size() > kMaxHeaderBytes)
      throw DataError(file_.string() + ": kiln-hdf5-reader sent an oversized header");
    if (newline == std::string_view::npos) return {};
    header_done_ = true;
    parse_header();
    current_ = 0;
    begin_current();
    return piece.substr(newline + 1);
  }

  // The announced arrays, checked again here: the sizes are what kiln receives.
  void parse_header() {
    const nlohmann::json header = nlohmann::json::parse(header_, nullptr, false);
    if (!header.is_object() || !header.contains("arrays") || !header["arrays"].is_array() ||
        header["arrays"].size() != specs_.size())
      malformed();
    for (std::size_t i = 0; i < specs_.size(); ++i) {
      const nlohmann::json& entry = header["arrays"][i];
      const auto text = [&](const char* key) {
        return entry.contains(key) && entry[key].is_string() ? entry[key].get<std::string>()
                                                             : std::string();
      };
      const auto dtype = dtype_from_name(text("dtype"));
      if (!dtype || !entry.contains("shape") || !entry["shape"].is_array() ||
          text("name") != parse_array_spec(specs_[i]).name)
        malformed();
      ArrayInfo info{text("name"), *dtype, {}};
      for (const nlohmann::json& extent : entry["shape"]) {
        if (!extent.is_number_integer() || extent.get<std::int64_t>() < 0) malformed();
        info.shape.push_back(extent.get<std::int64_t>());
      }
      sizes_.push_back(static_cast<std::size_t>(
          checked_bytes(info.shape, static_cast<std::int64_t>(size_of(info.dtype)),
                        fmt::format("{}: array '{}'", file_.string(), info.name))));
      if (!text("stored").empty()) converted_[info.name] = text("stored");
      arrays_.push_back(std::move(info));
    }
  }

  void begin_current() {
    received_ = 0;
    if (current_ < arrays_.size()) sink_.begin_array(arrays_[current_]);
    next_array();
  }

  void next_array() {
    if (current_ < arrays_.size() && received_ == sizes_[current_]) {
      ++current_;
      begin_current();
    }
  }

  fs::path file_;
  const std::vector<std::string>& specs_;
  ArraySink& sink_;
  std::string header_;
  bool header_done_ = false;
  std::vector<ArrayInfo> arrays_;
  std::vector<std::size_t> sizes_;
  std::map<std::string, std::string> converted_;
  std::size_t current_ = 0;
  std::size_t received_ = 0;
};

// Each array in memory, allocated once its declared size passed the checks.
class MemorySink : public ArraySink {
 public:
  explicit MemorySink(fs::path file) : file_(std::move(file)) {}

  void begin_array(const ArrayInfo& info) override {
    const std::uint64_t size = check_declared_size(file_, info.name, info.shape, info.dtype);
    Array array;
    array.name = info.name;
    array.dtype = info.dtype;
    array.shape = info.shape;
    try {
      array.bytes.reserve(size);
    } catch (const std::exception&) {
      throw DataError(
          fmt::format("{}: array '{}' declares shape [{}], {} bytes, more than fits in memory",
                      file_.string(), info.name, fmt::join(info.shape, ", "), size));
    }
    arrays.push_back(std::move(array));
  }

  void write(const std::uint8_t* bytes, std::size_t size) override {
    arrays.back().bytes.insert(arrays.back().bytes.end(), bytes, bytes + size);
  }

  std::vector<Array> arrays;

 private:
  fs::path file_;
};

}  // namespace

fs::path reader_program() {
  if (const char* program = std::getenv("KILN_HDF5_READER"); program != nullptr && *program)
    return program;
  std::vector<fs::path> candidates;
  std::error_code ec;
  if (const fs::path executable = fs::read_symlink("/proc/self/exe", ec); !ec)
    candidates.push_back(prefix_of(executable) / KILN_HDF5_READER_RELATIVE_PATH);
  Dl_info library{};
  if (::dladdr(reinterpret_cast<const void*>(&reader_program), &library) != 0 &&
      library.dli_fname != nullptr)
    candidates.push_back(prefix_of(fs::absolute(library.dli_fname, ec)) /
                         KILN_HDF5_READER_RELATIVE_PATH);
  for (const fs::path& candidate : candidates)
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal();
  return candidates.empty() ? fs::path("kiln-hdf5-reader") : candidates.front().lexically_normal();
}

namespace {

// A file as it was when it passed a check, and the reader and memory budget that
// checked it.
struct CheckedFile {
  data::detail::FileIdentity file;
  std::string reader;
  std::uint64_t memory = 0;
  auto operator<=>(const CheckedFile&) const = default;
};

// The files this process checked, unchanged since (a data set opened again by each
// epoch's validation or each trial of a sweep is checked once); only those settled
// before their check (file_identity.h).
std::mutex checked_mutex;
std::set<CheckedFile> checked_files;

}  // namespace

void check_in_reader_process(const fs::path& file) {
  if (detail::in_reader_process.load()) return;
  const std::optional<data::detail::FileIdentity> identity = data::detail::identify(file);
  const CheckedFile checked{identity.value_or(data::detail::FileIdentity{}),
                            reader_program().string(), import_memory_budget()};
  if (identity) {
    const std::scoped_lock lock(checked_mutex);
    if (checked_files.contains(checked)) return;
  }
  const std::int64_t started = data::detail::now_ns();
  run_reader(file, {"check", fs::absolute(file).string()}, [](std::string_view) {});
  if (identity && data::detail::settled_before(*identity, started)) {
    const std::scoped_lock lock(checked_mutex);
    checked_files.insert(checked);
  }
}

std::map<std::string, std::string> stream_arrays_in_reader_process(
    const fs::path& file, const std::vector<std::string>& specs, ArraySink& sink) {
  std::vector<std::string> arguments = {"arrays", fs::absolute(file).string()};
  arguments.insert(arguments.end(), specs.begin(), specs.end());
  ArrayReceiver receiver(file, specs, sink);
  run_reader(file, std::move(arguments),
             [&receiver](std::string_view piece) { receiver.take(piece); });
  return receiver.finish();
}

SourceArrays read_arrays_in_reader_process(const fs::path& file,
                                           const std::vector<std::string>& specs) {
  MemorySink sink(file);
  std::map<std::string, std::string> converted = stream_arrays_in_reader_process(file, specs, sink);
  return {std::move(sink.arrays), std::move(converted)};
}

}  // namespace kiln::data::hdf5
