// .npz reader over libzip: each member is streamed through the NPY reader by a
// ByteSource over the member, so an archive is never unpacked to disk and a
// member's size comes from its NPY header, checked as for a .npy file.
#include <kiln/data/npz.h>
#include <kiln/error.h>

#include "data/byte_source.h"
#include "data/npy_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zip.h>

#include <algorithm>
#include <optional>

namespace kiln::data {
namespace {

namespace fs = std::filesystem;

// An archive opened read-only; ZIP_CHECKCONS compares every local header with the
// central directory, so a damaged archive fails here rather than inside a member.
class ZipArchive {
 public:
  explicit ZipArchive(const fs::path& path) : path_(path) {
    int code = 0;
    archive_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (archive_ == nullptr) {
      zip_error_t error;
      zip_error_init_with_code(&error, code);
      const std::string reason = zip_error_strerror(&error);
      zip_error_fini(&error);
      throw DataError(
          fmt::format("{}: not a zip archive kiln can read (libzip: {})", path.string(), reason));
    }
  }
  ~ZipArchive() { zip_discard(archive_); }
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  std::vector<std::string> member_names() const {
    std::vector<std::string> names;
    const zip_int64_t count = zip_get_num_entries(archive_, 0);
    for (zip_int64_t i = 0; i < count; ++i) {
      const char* name = zip_get_name(archive_, static_cast<zip_uint64_t>(i), 0);
      if (name == nullptr)
        throw DataError(fmt::format("{}: cannot read the name of member {} (libzip: {})",
                                    path_.string(), i, zip_strerror(archive_)));
      names.emplace_back(name);
    }
    return names;
  }

  zip_t* get() const noexcept { return archive_; }

 private:
  const fs::path& path_;
  zip_t* archive_ = nullptr;
};

// The inflated bytes of one member; libzip checks its CRC at the end.
class ZipMemberSource final : public detail::ByteSource {
 public:
  ZipMemberSource(const ZipArchive& archive, zip_uint64_t index, std::string where)
      : where_(std::move(where)) {
    file_ = zip_fopen_index(archive.get(), index, 0);
    if (file_ == nullptr)
      throw DataError(
          fmt::format("{}: cannot be opened (libzip: {})", where_, zip_strerror(archive.get())));
  }
  ~ZipMemberSource() override { zip_fclose(file_); }
  ZipMemberSource(const ZipMemberSource&) = delete;
  ZipMemberSource& operator=(const ZipMemberSource&) = delete;

  std::size_t read(std::uint8_t* out, std::size_t size) override {
    std::size_t done = 0;
    while (done < size) {
      const zip_int64_t got = zip_fread(file_, out + done, size - done);
      if (got < 0)
        throw DataError(
            fmt::format("{}: damaged member (libzip: {})", where_, zip_file_strerror(file_)));
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

 private:
  std::string where_;
  zip_file_t* file_ = nullptr;
};

// numpy.load's name for a member: without ".npy".
std::string numpy_name(std::string_view member) {
  if (member.ends_with(".npy")) member.remove_suffix(4);
  return std::string(member);
}

std::optional<zip_uint64_t> find_member(const std::vector<std::string>& members,
                                        const std::string& wanted) {
  for (const std::string& candidate : {wanted, wanted + ".npy"}) {
    const auto found = std::find(members.begin(), members.end(), candidate);
    if (found != members.end()) return static_cast<zip_uint64_t>(found - members.begin());
  }
  return std::nullopt;
}

void check_rows(const fs::path& path, const std::vector<NpzArray>& arrays) {
  for (const NpzArray& other : arrays)
    if (other.array.rows() != arrays.front().array.rows())
      throw DataError(fmt::format(
          "{}: member '{}' has {} rows but member '{}' has {}: the arrays must agree on rows",
          path.string(), other.member, other.array.rows(), arrays.front().member,
          arrays.front().array.rows()));
}

}  // namespace

std::vector<NpzArray> read_npz(const fs::path& path, const std::vector<ArrayChoice>& choices) {
  const ZipArchive archive(path);
  const std::vector<std::string> members = archive.member_names();
  std::vector<NpzArray> arrays;
  for (const ArrayChoice& choice : choices) {
    const auto index = find_member(members, choice.member);
    if (!index) {
      std::vector<std::string> names;
      std::transform(members.begin(), members.end(), std::back_inserter(names), numpy_name);
      throw DataError(fmt::format(
          "{}: no member '{}' in the archive (members: {})", path.string(), choice.member,
          names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
    }
    const std::string& member = members[*index];
    const std::string where = fmt::format("{}: member '{}'", path.string(), member);
    ZipMemberSource source(archive, *index, where);
    NpzArray read{detail::read_npy(source, where), member};
    read.array.name = choice.name;
    arrays.push_back(std::move(read));
  }
  check_rows(path, arrays);
  return arrays;
}

}  // namespace kiln::data
