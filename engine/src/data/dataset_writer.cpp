// Writing dataset versions: the HDF5 file array by array and block by block
// (detail::DatasetFileWriter), and its publication in the store under its content
// id (DatasetWriter), in memory bounded by one block whatever the data's size.
#include <kiln/checked_size.h>
#include <kiln/data/dataset.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/hash.h>
#include <kiln/log.h>

#include "data/content_hash.h"
#include "data/dataset_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace kiln::data {
namespace fs = std::filesystem;
using hdf5::check;
using hdf5::check_status;
using hdf5::Handle;

namespace {

constexpr int kDeflateLevel = 4;

// Chunks hold whole rows, about 512 KiB of them. HDF5's default chunk cache (used
// by h5py and by readers that do not tune it) is 1 MiB per dataset, and a chunk
// that does not fit is read and inflated again for every partial read, so chunks
// stay well below 1 MiB; much smaller ones cost an index entry and a filter call
// each and give deflate less context. For Fashion-MNIST (784-byte rows) that is
// 668 rows per chunk, 90 chunks for the 60000 training images; the streaming
// loader reads whole chunks.
constexpr std::int64_t kChunkTargetBytes = 512 * 1024;
// What DatasetWriter buffers before it writes: whole chunks, about this much.
constexpr std::int64_t kBlockTargetBytes = 4 << 20;

std::int64_t elements_of(const ArrayInfo& info) {
  std::int64_t elements = 1;
  for (const std::int64_t extent : info.shape) elements *= extent;
  return elements;
}

Handle creation_properties(const ArrayInfo& info, std::int64_t chunk_rows, const fs::path& path) {
  Handle properties(check(H5Pcreate(H5P_DATASET_CREATE), path, "cannot create properties"),
                    H5Pclose);
  if (elements_of(info) == 0) return properties;  // HDF5 cannot chunk an empty extent
  std::vector<hsize_t> chunk(info.shape.begin(), info.shape.end());
  chunk.front() = static_cast<hsize_t>(chunk_rows);
  const std::string what = fmt::format("cannot set chunking and compression of '{}'", info.name);
  check_status(H5Pset_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data()), path,
               what);
  // Shuffle groups the bytes of equal significance, which deflate then
  // compresses far better for multi-byte numbers; it does nothing for bytes.
  if (size_of(info.dtype) > 1) check_status(H5Pset_shuffle(properties.get()), path, what);
  check_status(H5Pset_deflate(properties.get(), kDeflateLevel), path, what);
  return properties;
}

std::string now_iso8601_utc() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text.data(), millis);
}

// HDF5 does not fsync; the rename must not publish a file whose blocks are not
// on disk yet.
void fsync_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    throw DataError(fmt::format("{}: cannot fsync: {}", path.string(), std::strerror(saved)));
  }
  ::close(fd);
}

// Removes a scratch directory when it goes out of scope, whatever happened.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(fs::path path) : path_(std::move(path)) {}
  ~ScratchDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

bool is_content_id(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(),
                                          [](unsigned char c) { return std::isxdigit(c) != 0; });
}

}  // namespace

// ---- the file ----

detail::DatasetFileWriter::DatasetFileWriter(fs::path path) : path_(std::move(path)) {
  hdf5::silence_errors();
  const Handle access = hdf5::file_access(path_);
  file_ = Handle(check(H5Fcreate(path_.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, access.get()), path_,
                       "cannot create HDF5 file"),
                 H5Fclose);
}

detail::DatasetFileWriter::~DatasetFileWriter() = default;

void detail::DatasetFileWriter::begin_array(const ArrayInfo& info) {
  dataset_ = Handle();
  info_ = info;
  written_rows_ = 0;
  const std::int64_t rows = info.shape.front();
  const std::int64_t row_bytes = std::max<std::int64_t>(detail::row_bytes(info), 1);
  chunk_rows_ =
      std::clamp<std::int64_t>(kChunkTargetBytes / row_bytes, 1, std::max<std::int64_t>(rows, 1));
  const std::vector<hsize_t> dims(info.shape.begin(), info.shape.end());
  const Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                           path_, "cannot create a dataspace"),
                     H5Sclose);
  const Handle properties = creation_properties(info, chunk_rows_, path_);
  memory_type_ = hdf5::type_of(info.dtype);
  dataset_ = Handle(check(H5Dcreate2(file_.get(), info.name.c_str(), memory_type_.get(),
                                     space.get(), H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                          path_, fmt::format("cannot write array '{}'", info.name)),
                    H5Dclose);
}

void detail::DatasetFileWriter::write_rows(const std::uint8_t* bytes, std::int64_t rows) {
  // Whole chunks of a one-byte type (images, the bulk of most data) are deflated on
  // every thread and written as they are; the rest goes through HDF5's own filter.
  if (size_of(info_.dtype) == 1 && written_rows_ % chunk_rows_ == 0 && rows >= chunk_rows_) {
    const std::int64_t chunks = rows / chunk_rows_;
    write_chunks(bytes, chunks);
    bytes += chunks * chunk_rows_ * detail::row_bytes(info_);
    rows -= chunks * chunk_rows_;
  }
  if (rows == 0) return;
  const std::string what = fmt::format("cannot write rows {}..{} of array '{}'", written_rows_,
                                       written_rows_ + rows - 1, info_.name);
  const Handle file_space(check(H5Dget_space(dataset_.get()), path_, what), H5Sclose);
  std::vector<hsize_t> start(info_.shape.size(), 0);
  std::vector<hsize_t> extent(info_.shape.begin(), info_.shape.end());
  start.front() = static_cast<hsize_t>(written_rows_);
  extent.front() = static_cast<hsize_t>(rows);
  check_status(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                   extent.data(), nullptr),
               path_, what);
  const Handle memory_space(
      check(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), path_, what),
      H5Sclose);
  check_status(H5Dwrite(dataset_.get(), memory_type_.get(), memory_space.get(), file_space.get(),
                        H5P_DEFAULT, bytes),
               path_, what);
  written_rows_ += rows;
}

void detail::DatasetFileWriter::write_chunks(const std::uint8_t* bytes, std::int64_t chunks) {
  const auto chunk_bytes = static_cast<std::size_t>(chunk_rows_ * detail::row_bytes(info_));
  std::vector<std::vector<std::uint8_t>> packed(static_cast<std::size_t>(chunks));
  // What HDF5's deflate filter writes: a zlib stream at the dataset's level.
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t i = 0; i < chunks; ++i) {
    std::vector<std::uint8_t>& out = packed[static_cast<std::size_t>(i)];
    uLongf size = compressBound(static_cast<uLong>(chunk_bytes));
    out.resize(size);
    if (compress2(out.data(), &size, bytes + i * chunk_bytes, static_cast<uLong>(chunk_bytes),
                  kDeflateLevel) != Z_OK)
      size = 0;
    out.resize(size);
  }
  std::vector<hsize_t> offset(info_.shape.size(), 0);
  for (std::int64_t i = 0; i < chunks; ++i) {
    const std::vector<std::uint8_t>& out = packed[static_cast<std::size_t>(i)];
    offset.front() = static_cast<hsize_t>(written_rows_);
    // A chunk that deflate does not shrink is stored as it is, with the filter's bit
    // set in the chunk's mask: what HDF5 does with an optional filter that fails.
    const bool raw = out.empty() || out.size() >= chunk_bytes;
    check_status(H5Dwrite_chunk(dataset_.get(), H5P_DEFAULT, raw ? 1u : 0u, offset.data(),
                                raw ? chunk_bytes : out.size(),
                                raw ? static_cast<const void*>(bytes + i * chunk_bytes)
                                    : static_cast<const void*>(out.data())),
                 path_,
                 fmt::format("cannot write rows {}..{} of array '{}'", written_rows_,
                             written_rows_ + chunk_rows_ - 1, info_.name));
    written_rows_ += chunk_rows_;
  }
}

void detail::DatasetFileWriter::end_array(const std::string& sha256) {
  hdf5::write_string_attribute(dataset_.get(), kArraySha256Attribute, sha256, path_);
  if (!dataset_.close()) hdf5::fail(path_, fmt::format("cannot write array '{}'", info_.name));
}

void detail::DatasetFileWriter::finish(const DatasetVersion& version) {
  const hid_t root = file_.get();
  hdf5::write_string_attribute(root, "kiln.format", kDatasetFormat, path_);
  hdf5::write_string_attribute(root, "kiln.id", version.id, path_);
  hdf5::write_string_attribute(root, "kiln.name", version.name, path_);
  hdf5::write_string_attribute(root, "kiln.created", version.created, path_);
  hdf5::write_string_attribute(root, "kiln.parent", version.parent, path_);
  hdf5::write_string_attribute(root, "kiln.source", version.source.dump(), path_);
  if (!file_.close()) hdf5::fail(path_, "cannot finish writing the HDF5 file");
}

// ---- the version ----

struct DatasetWriter::State {
  fs::path directory;
  DatasetVersion version;
  std::optional<ScratchDirectory> scratch;
  fs::path temp;
  std::optional<detail::DatasetFileWriter> file;
  detail::ContentHasher content;
  std::optional<Sha256> array_hash;  // of the current array
  bool in_array = false;
  ArrayInfo current;
  std::int64_t rows = -1;  // of the first array
  std::string first_name;
  std::uint64_t expected = 0, received = 0;
  std::int64_t row_bytes = 0;
  std::size_t block_bytes = 0;
  std::vector<std::uint8_t> buffer;

  std::string where() const { return fmt::format("dataset '{}'", version.name); }

  void write_rows(const std::uint8_t* bytes, std::size_t size) {
    file->write_rows(bytes, static_cast<std::int64_t>(size) / row_bytes);
  }

  void end_array() {
    if (!in_array) return;
    in_array = false;
    if (received != expected)
      throw DataError(fmt::format("{}: array '{}' got {} bytes, but shape [{}] of {} needs {}",
                                  where(), current.name, received, fmt::join(current.shape, ", "),
                                  name_of(current.dtype), expected));
    if (!buffer.empty()) write_rows(buffer.data(), buffer.size());
    buffer.clear();
    file->end_array(array_hash->hex_digest());
  }
};

DatasetWriter::DatasetWriter(const DatasetStore& store, std::string name, nlohmann::json source,
                             std::string parent)
    : state_(std::make_unique<State>()) {
  if (name.empty()) throw DataError("a dataset version needs a name");
  if (!parent.empty() && !is_content_id(parent))
    throw DataError(fmt::format("dataset '{}': parent '{}' is not a dataset id", name, parent));
  State& s = *state_;
  s.directory = store.directory();
  s.version.name = std::move(name);
  s.version.source = std::move(source);
  s.version.parent = std::move(parent);
  s.scratch.emplace(make_unique_directory(s.directory, ".tmp-"));
  s.temp = s.scratch->path() / "version.h5";
  s.file.emplace(s.temp);
}

DatasetWriter::~DatasetWriter() = default;

nlohmann::json& DatasetWriter::source() noexcept { return state_->version.source; }

void DatasetWriter::begin_array(const ArrayInfo& info) {
  State& s = *state_;
  s.end_array();
  if (info.name.empty() || info.name == "." || info.name.find('/') != std::string::npos)
    throw DataError(fmt::format("{}: '{}' is not a valid array name", s.where(), info.name));
  if (info.shape.empty())
    throw DataError(fmt::format("{}: array '{}' has no axes", s.where(), info.name));
  if (!s.version.arrays.empty() && info.name <= s.version.arrays.back().name)
    throw InternalError(fmt::format("{}: array '{}' after '{}': arrays come in name order",
                                    s.where(), info.name, s.version.arrays.back().name));
  if (s.rows >= 0 && info.shape.front() != s.rows)
    throw DataError(fmt::format("{}: arrays disagree on rows: '{}' has {}, '{}' has {}", s.where(),
                                s.first_name, s.rows, info.name, info.shape.front()));
  s.expected = static_cast<std::uint64_t>(
      checked_bytes(info.shape, static_cast<std::int64_t>(size_of(info.dtype)),
                    fmt::format("{}: array '{}'", s.where(), info.name)));
  if (s.rows < 0) {
    s.rows = info.shape.front();
    s.first_name = info.name;
  }
  s.received = 0;
  s.row_bytes = detail::row_bytes(info);
  s.content.begin_array(info.name, info.dtype, info.shape);
  s.array_hash.emplace();
  s.file->begin_array(info);
  const std::int64_t chunk_bytes = std::max<std::int64_t>(s.file->chunk_rows() * s.row_bytes, 1);
  s.block_bytes = static_cast<std::size_t>(
      std::max<std::int64_t>(kBlockTargetBytes / chunk_bytes, 1) * chunk_bytes);
  s.current = info;
  s.version.arrays.push_back(info);
  s.in_array = true;
}

void DatasetWriter::write(const std::uint8_t* bytes, std::size_t size) {
  State& s = *state_;
  if (!s.in_array) throw InternalError("DatasetWriter::write before begin_array");
  if (size > s.expected - s.received)
    throw DataError(fmt::format("{}: array '{}' got more than the {} bytes shape [{}] of {} needs",
                                s.where(), s.current.name, s.expected,
                                fmt::join(s.current.shape, ", "), name_of(s.current.dtype)));
  s.received += size;
  s.content.update(bytes, size);
  s.array_hash->update(bytes, size);
  if (!s.buffer.empty()) {  // top up the block begun before
    const std::size_t take = std::min(size, s.block_bytes - s.buffer.size());
    s.buffer.insert(s.buffer.end(), bytes, bytes + take);
    bytes += take;
    size -= take;
    if (s.buffer.size() < s.block_bytes) return;
    s.write_rows(s.buffer.data(), s.buffer.size());
    s.buffer.clear();
  }
  for (; size >= s.block_bytes; bytes += s.block_bytes, size -= s.block_bytes)
    s.write_rows(bytes, s.block_bytes);
  s.buffer.insert(s.buffer.end(), bytes, bytes + size);
}

DatasetVersion DatasetWriter::finish() {
  State& s = *state_;
  s.end_array();
  if (s.version.arrays.empty()) throw DataError(fmt::format("{} has no arrays", s.where()));
  s.version.id = s.content.finish(s.version.source);
  s.version.created = now_iso8601_utc();
  const fs::path target = s.directory / (s.version.id + ".h5");
  if (auto existing = detail::stored_version(target, true)) return *existing;
  // The file was written inside a hidden scratch directory (list() never looks
  // there) and is published by rename, so readers see a whole file or none.
  s.file->finish(s.version);
  s.file.reset();
  fsync_file(s.temp);
  {
    // Two writers of the same content: the first rename wins and the second
    // returns the first's version, as if it had found it before writing.
    const FileLock lock(s.directory / ".lock");
    if (auto existing = detail::stored_version(target, false)) return *existing;
    if (::rename(s.temp.c_str(), target.c_str()) != 0)
      throw DataError(
          fmt::format("{}: cannot rename into place: {}", target.string(), std::strerror(errno)));
    fsync_directory(s.directory);
  }
  log::debug("dataset {} ({}) written to {}", s.version.id, s.version.name, target.string());
  return read_dataset_info(target);
}

}  // namespace kiln::data
