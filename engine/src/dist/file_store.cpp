// The file store: one file per key in a directory every rank sees. A value is
// written to a temporary name unique to the writer and renamed over the key, so a
// reader sees a whole value or none, and keys may be set again (heartbeats).
// Gloo's own FileStore refuses to overwrite a key, hence this one.
#include <kiln/dist/store.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace kiln::dist {
namespace {

class FileStore final : public Store {
 public:
  explicit FileStore(const std::filesystem::path& dir) : dir_(prepare(dir)) {}

  void set(const std::string& key, const std::string& value) override {
    check_key(key);
    static std::atomic<unsigned> counter{0};
    const std::filesystem::path tmp =
        dir_ / fmt::format(".{}.{}.{}.tmp", key, ::getpid(), counter++);
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(value.data(), static_cast<std::streamsize>(value.size()));
      if (!out.flush()) fail("write", tmp);
    }
    if (std::rename(tmp.c_str(), (dir_ / key).c_str()) != 0) fail("rename", tmp);
  }

  std::optional<std::string> try_get(const std::string& key) override {
    check_key(key);
    std::ifstream in(dir_ / key, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }

  std::string describe() const override { return "file:" + dir_.string(); }

 private:
  static std::filesystem::path prepare(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      throw StageError(
          fmt::format("rendezvous directory {}: cannot create it: {}", dir.string(), ec.message()));
    return std::filesystem::absolute(dir).lexically_normal();
  }
  static void check_key(const std::string& key) {
    if (key.empty() || key.find('/') != std::string::npos || key.front() == '.')
      throw InternalError(fmt::format("file store: '{}' cannot be a key", key));
  }
  [[noreturn]] void fail(const char* what, const std::filesystem::path& path) const {
    throw StageError(fmt::format("rendezvous {}: {} {}: {}", describe(), what, path.string(),
                                 std::strerror(errno)));
  }

  std::filesystem::path dir_;
};

}  // namespace

std::unique_ptr<Store> open_file_store(const std::filesystem::path& dir) {
  return std::make_unique<FileStore>(dir);
}

}  // namespace kiln::dist
