#include <kiln/error.h>
#include <kiln/fs.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "support/support.h"
#include "support/tmpfs.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemporaries) {
  test::TempDir dir;
  write_file_atomic(dir / "sub" / "f.txt", "one");
  write_file_atomic(dir / "sub" / "f.txt", "two");
  EXPECT_EQ(read_file(dir / "sub" / "f.txt"), "two");
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir / "sub")) ++files;
  EXPECT_EQ(files, 1);
}

TEST(Fs, AtomicWriteIntoAnUnwritablePlaceNamesThePath) {
  try {
    write_file_atomic("/proc/kiln-test/f.txt", "x");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("/proc/kiln-test"));
  }
}

TEST(Fs, ConcurrentAppendersNeverSplitALine) {
  test::TempDir dir;
  const fs::path file = dir / "lines";
  constexpr int kProcesses = 6, kLines = 300;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string line = std::string(200, static_cast<char>('a' + p));
      for (int i = 0; i < kLines; ++i) append_line(file, line);
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) ::waitpid(pid, nullptr, 0);
  const auto lines = test::lines_of(read_file(file));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kProcesses * kLines));
  for (const auto& line : lines) {
    ASSERT_EQ(line.size(), 200u);
    EXPECT_EQ(line, std::string(200, line[0]));
  }
}

// A writer killed while it creates files by appending never leaves one empty
// (MLflow refuses a metric file without data, and with it the whole store).
TEST(Fs, KilledAppenderNeverLeavesAnEmptyFile) {
  test::TempDir dir;
  for (int attempt = 0; attempt < 20; ++attempt) {
    const fs::path sub = dir / std::to_string(attempt);
    fs::create_directories(sub);
    const pid_t pid = ::fork();
    if (pid == 0) {
      for (int i = 0;; ++i) append_line(sub / std::to_string(i), "1 2 3");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + attempt));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    int files = 0;
    for (const auto& entry : fs::directory_iterator(sub)) {
      ++files;
      EXPECT_EQ(read_file(entry.path()), "1 2 3\n") << entry.path();
    }
    EXPECT_GT(files, 0);
  }
}

// A line longer than the slack in the file's last page: an unchecked write puts
// part of it in before the disk refuses.
const std::string kLongLine(10000, 'x');

TEST(Fs, AppendOnAFullDiskKeepsNoPartOfTheLineAndTheNextStartsClean) {
  if (const auto why = test::Tmpfs::why_not(); !why.empty()) FAIL() << why;  // CI runs as root
  test::TempDir dir;
  test::Tmpfs disk(dir / "disk", 1);
  const fs::path file = disk / "metric";
  append_line(file, "1 0.5 0");
  disk.fill("filler");
  try {
    append_line(file, kLongLine);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(file.string() + ": cannot append a line"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("No space left on device"));
  }
  EXPECT_EQ(read_file(file), "1 0.5 0\n");
  fs::remove(disk / "filler");
  append_line(file, "2 0.25 1");
  EXPECT_EQ(read_file(file), "1 0.5 0\n2 0.25 1\n");
}

TEST(Fs, AppendOnAFullDiskCreatesNoFile) {
  if (const auto why = test::Tmpfs::why_not(); !why.empty()) FAIL() << why;  // CI runs as root
  test::TempDir dir;
  test::Tmpfs disk(dir / "disk", 1);
  disk.fill("filler");
  EXPECT_THROW(append_line(disk / "metric", kLongLine), DataError);
  EXPECT_FALSE(fs::exists(disk / "metric"));
}

// Past RLIMIT_FSIZE the kernel writes what fits, then fails with EFBIG: the part
// written is cut back off.
TEST(Fs, AppendPastTheFileSizeLimitIsCutBack) {
  test::TempDir dir;
  const fs::path file = dir / "metric";
  append_line(file, "1 0.5 0");
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(2);
    try {
      append_line(file, kLongLine);
    } catch (const DataError& e) {
      ::_exit(std::string(e.what()).find("File too large") == std::string::npos ? 3 : 0);
    }
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: no limit, 3: another error";
  EXPECT_EQ(read_file(file), "1 0.5 0\n");
  append_line(file, "2 0.25 1");
  EXPECT_EQ(read_file(file), "1 0.5 0\n2 0.25 1\n");
}

TEST(Fs, FileLockExcludesOtherProcesses) {
  test::TempDir dir;
  const fs::path lock_file = dir / "l.lock";
  const fs::path log = dir / "log";
  // Each child appends "start" and "end" while holding the lock: with mutual
  // exclusion the lines alternate strictly.
  std::vector<pid_t> children;
  for (int p = 0; p < 4; ++p) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      for (int i = 0; i < 5; ++i) {
        FileLock lock(lock_file);
        append_line(log, "start");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        append_line(log, "end");
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (const pid_t pid : children) ::waitpid(pid, nullptr, 0);
  const auto lines = test::lines_of(read_file(log));
  ASSERT_EQ(lines.size(), 40u);
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i], i % 2 == 0 ? "start" : "end");
}

TEST(Fs, FileLockExcludesThreadsOfOneProcess) {
  test::TempDir dir;
  int inside = 0, overlaps = 0;
  auto worker = [&] {
    for (int i = 0; i < 50; ++i) {
      FileLock lock(dir / "t.lock");
      if (++inside != 1) ++overlaps;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      --inside;
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  EXPECT_EQ(overlaps, 0);
}

TEST(Fs, UniqueDirectoriesDiffer) {
  test::TempDir dir;
  const auto a = make_unique_directory(dir.path(), "x-");
  const auto b = make_unique_directory(dir.path(), "x-");
  EXPECT_NE(a, b);
  EXPECT_TRUE(fs::is_directory(a));
  EXPECT_TRUE(a.filename().string().starts_with("x-"));
}

}  // namespace
}  // namespace kiln
