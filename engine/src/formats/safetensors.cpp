// safetensors writer and validating reader. The reader trusts nothing in the file:
// every size it allocates is first checked against the file's real size, so a
// header that claims 2^60 bytes costs an error message, not an allocation.
#include <kiln/checked_size.h>
#include <kiln/error.h>
#include <kiln/fs.h>
#include <kiln/safetensors.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>

namespace kiln {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; kiln copies it as is");

constexpr std::uint64_t kUint64Max = std::numeric_limits<std::uint64_t>::max();

// Tensor entries sit at depth 1 and their shape arrays at depth 2; anything deeper
// is not a safetensors header, and refusing it early bounds the parser's work.
constexpr int kMaxHeaderDepth = 2;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& problem) {
  throw DataError(path.string() + ": " + problem);
}

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Bytes of a tensor; DataError naming `where` when its shape is impossibly large.
std::uint64_t byte_size(const std::vector<std::int64_t>& shape, DType dtype,
                        const std::string& where) {
  return static_cast<std::uint64_t>(
      checked_bytes(shape, static_cast<std::int64_t>(size_of(dtype)), where));
}

class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0) fail(path, std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(info.st_mode)) fail(path, "not a regular file");
    size_ = static_cast<std::uint64_t>(info.st_size);
  }
  ~ReadOnlyFile() { ::close(fd_); }
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  std::uint64_t size() const noexcept { return size_; }

  void read(std::uint64_t offset, void* destination, std::uint64_t count) const {
    auto* out = static_cast<char*>(destination);
    while (count > 0) {
      const ssize_t got = ::pread(fd_, out, count, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail(path_, std::string("cannot read: ") + std::strerror(errno));
      if (got == 0) fail(path_, "file shrank while being read");
      out += got;
      offset += static_cast<std::uint64_t>(got);
      count -= static_cast<std::uint64_t>(got);
    }
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

nlohmann::json parse_header(const std::filesystem::path& path, const std::string& text) {
  std::set<std::string> names;
  auto guard = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if ((event == Event::object_start || event == Event::array_start) && depth > kMaxHeaderDepth)
      fail(path, "header nests deeper than a safetensors header can");
    if (event == Event::key && depth == 1 && !names.insert(parsed.get<std::string>()).second)
      fail(path, "header names tensor " + quoted(parsed.get<std::string>()) + " twice");
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, guard);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  return header;
}

std::uint64_t parse_count(const std::filesystem::path& path, const nlohmann::json& value,
                          const std::string& what) {
  if (!value.is_number_unsigned())
    fail(path, what + " must be a non-negative integer, got " + value.dump());
  return value.get<std::uint64_t>();
}

Entry parse_entry(const std::filesystem::path& path, const std::string& name,
                  const nlohmann::json& json, std::uint64_t data_size) {
  const std::string where = "tensor " + quoted(name);
  if (!json.is_object()) fail(path, where + ": entry is not a JSON object");
  for (const auto& [key, value] : json.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail(path, where + ": unknown field " + quoted(key));
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!json.contains(key)) fail(path, where + ": missing field " + quoted(key));

  Entry entry;
  entry.name = name;
  const auto& dtype = json["dtype"];
  if (!dtype.is_string()) fail(path, where + ": dtype is not a string");
  const auto known = dtype_from_safetensors(dtype.get<std::string>());
  if (!known)
    fail(path, where + ": unknown dtype " + dtype.dump() +
                   " (kiln reads F32, F64, BF16, F16, I8, I16, I32, I64, U8)");
  entry.dtype = *known;

  const auto& shape = json["shape"];
  if (!shape.is_array()) fail(path, where + ": shape is not an array");
  for (const auto& dim : shape) {
    const std::uint64_t d = parse_count(path, dim, where + ": shape entry");
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail(path, where + ": shape entry " + dim.dump() + " is too large");
    entry.shape.push_back(static_cast<std::int64_t>(d));
  }

  const auto& offsets = json["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail(path, where + ": data_offsets must be [begin, end]");
  entry.begin = parse_count(path, offsets[0], where + ": data_offsets begin");
  entry.end = parse_count(path, offsets[1], where + ": data_offsets end");
  if (entry.begin > entry.end || entry.end > data_size)
    fail(path, where + ": data_offsets " + offsets.dump() + " lie outside the data section of " +
                   std::to_string(data_size) + " bytes");
  const std::uint64_t bytes = byte_size(entry.shape, entry.dtype, path.string() + ": " + where);
  if (bytes != entry.end - entry.begin)
    fail(path, where + ": data_offsets span " + std::to_string(entry.end - entry.begin) +
                   " bytes, but shape " + shape_text(entry.shape) + " of " + dtype.dump() +
                   " needs " + std::to_string(bytes));
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::filesystem::path& path,
                                                  const nlohmann::json& json) {
  std::map<std::string, std::string> metadata;
  if (json.is_null()) return metadata;
  if (!json.is_object()) fail(path, "__metadata__ is not a JSON object");
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string())
      fail(path,
           "__metadata__ entry " + quoted(key) + " is not a string (got " + value.dump() + ")");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

// Tensors must tile the data section exactly: no overlap, no hole, no tail.
void check_tiling(const std::filesystem::path& path, std::vector<Entry>& entries,
                  std::uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    if (entry.begin < covered)
      fail(path, "tensors " + quoted(previous->name) + " and " + quoted(entry.name) + " overlap");
    if (entry.begin > covered)
      fail(path, std::to_string(entry.begin - covered) + " bytes before tensor " +
                     quoted(entry.name) + " belong to no tensor");
    covered = entry.end;
    previous = &entry;
  }
  if (covered != data_size)
    fail(path, std::to_string(data_size - covered) +
                   " bytes at the end of the data section belong to no tensor");
}

}  // namespace

const StoredTensor* SafetensorsFile::find(const std::string& name) const {
  for (const StoredTensor& tensor : tensors)
    if (tensor.name == name) return &tensor;
  return nullptr;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const TensorView& tensor : tensors) {
    if (tensor.name.empty() || tensor.name == "__metadata__" || !names.insert(tensor.name).second)
      fail(path,
           "cannot write tensor name " + quoted(tensor.name) + ": empty, reserved or used twice");
    for (const std::int64_t dim : tensor.shape)
      if (dim < 0)
        throw InternalError(path.string() + ": tensor " + quoted(tensor.name) +
                            " has a negative dimension in " + shape_text(tensor.shape));
    const std::uint64_t bytes =
        byte_size(tensor.shape, tensor.dtype, path.string() + ": tensor " + quoted(tensor.name));
    if (bytes > kUint64Max - offset)
      throw InternalError(path.string() + ": tensor " + quoted(tensor.name) + " is too large");
    if (bytes > 0 && tensor.data == nullptr)
      throw InternalError(path.string() + ": tensor " + quoted(tensor.name) + " has no data");
    header[tensor.name] = {{"dtype", safetensors_name(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(path,
         std::string("cannot write header (a name or metadata entry is not UTF-8): ") + e.what());
  }
  // Padding to 8 bytes aligns the data section for readers that map the file.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string content;
  content.reserve(8 + text.size() + offset);
  const std::uint64_t header_size = text.size();
  for (int byte = 0; byte < 8; ++byte)
    content.push_back(static_cast<char>(header_size >> (8 * byte)));
  content += text;
  for (const TensorView& tensor : tensors) {
    const std::uint64_t bytes = byte_size(tensor.shape, tensor.dtype, path.string());
    content.append(static_cast<const char*>(tensor.data), bytes);
  }
  write_file_atomic(path, content);
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const ReadOnlyFile file(path);
  if (file.size() < 8)
    fail(path, "too short for a safetensors file (" + std::to_string(file.size()) +
                   " bytes; the header length alone takes 8)");
  unsigned char length_bytes[8];
  file.read(0, length_bytes, 8);
  std::uint64_t header_size = 0;
  for (int byte = 7; byte >= 0; --byte) header_size = (header_size << 8) | length_bytes[byte];
  if (header_size > kSafetensorsMaxHeader)
    fail(path, "header length " + std::to_string(header_size) + " exceeds the limit of " +
                   std::to_string(kSafetensorsMaxHeader) + " bytes");
  if (header_size > file.size() - 8)
    fail(path, "header length " + std::to_string(header_size) + " runs past the end of the file (" +
                   std::to_string(file.size()) + " bytes)");

  std::string text(header_size, '\0');
  file.read(8, text.data(), header_size);
  const nlohmann::json header = parse_header(path, text);
  const std::uint64_t data_start = 8 + header_size;
  const std::uint64_t data_size = file.size() - data_start;

  SafetensorsFile result;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__")
      result.metadata = parse_metadata(path, value);
    else
      entries.push_back(parse_entry(path, name, value, data_size));
  }
  check_tiling(path, entries, data_size);

  for (Entry& entry : entries) {
    StoredTensor tensor{std::move(entry.name), entry.dtype, std::move(entry.shape), {}};
    tensor.bytes.resize(entry.end - entry.begin);
    file.read(data_start + entry.begin, tensor.bytes.data(), tensor.bytes.size());
    result.tensors.push_back(std::move(tensor));
  }
  return result;
}

}  // namespace kiln
