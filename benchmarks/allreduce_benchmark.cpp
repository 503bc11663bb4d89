// All-reduce bandwidth of kiln's process group, as nccl-tests reports it:
//   algbw = bytes / time,  busbw = algbw * 2 (n - 1) / n
// (busbw is what each rank's link carries in a ring all-reduce, comparable across
// rank counts). A small main rather than Google Benchmark: every rank must run
// the same iterations in lockstep, which the benchmark library's adaptive
// iteration count does not promise.
//   allreduce_benchmark [--ranks 2,4] [--max-mb 64] [--rdzv file:DIR|tcp:HOST:PORT]
//                       [--device cpu|cuda]
// cpu: Gloo over loopback TCP, host buffers. cuda: NCCL, rank r on GPU r (needs as
// many GPUs as ranks, each rank says so otherwise; CUDA is first touched in the
// forked ranks, never before the fork; tools/gpu-check.sh runs it with two or more),
// each all-reduce waited for as the trainer waits for a bucket.
#include <kiln/dist/process_group.h>

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// One rank: for each size, 3 warm-up rounds then enough iterations for ~0.5 s;
// rank 0 prints a row per size.
void run_rank(int rank, int n, const std::string& rdzv, std::size_t max_bytes, bool cuda) {
  kiln::dist::DistEnv env;
  env.launcher = "benchmark";
  env.rank = rank;
  env.world_size = n;
  kiln::dist::GroupOptions options;
  options.hostname = "127.0.0.1";
  auto group = kiln::dist::init_process_group(env, rdzv, options);
  const kiln::Device device = cuda ? kiln::Device::cuda(rank) : kiln::Device::cpu();
  std::unique_ptr<kiln::dist::ProcessGroup> nccl;
  if (cuda) nccl = group->device_group(device);
  kiln::dist::ProcessGroup& reducer = cuda ? *nccl : *group;
  if (rank == 0)
    fmt::print("# {}, {} ranks\n{:>12} {:>8} {:>12} {:>12} {:>12}\n", reducer.backend(), n, "bytes",
               "iters", "time_us", "algbw_GB/s", "busbw_GB/s");
  for (std::size_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
    kiln::Tensor data =
        kiln::Tensor::full({static_cast<std::int64_t>(bytes / sizeof(float))}, 1.0f, device);
    for (int i = 0; i < 3; ++i) reducer.all_reduce(data);
    // Agree on the iteration count from rank 0's estimate.
    auto start = Clock::now();
    reducer.all_reduce(data);
    const double once = std::chrono::duration<double>(Clock::now() - start).count();
    kiln::Tensor iters = kiln::Tensor::from({static_cast<float>(std::max(5.0, 0.5 / once))}, {1});
    group->broadcast(iters, 0);
    const int count = static_cast<int>(std::min(iters.to_vector()[0], 2000.0f));
    group->barrier();
    start = Clock::now();
    for (int i = 0; i < count; ++i) reducer.all_reduce(data);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count() / count;
    const double algbw = static_cast<double>(bytes) / seconds / 1e9;
    if (rank == 0)
      fmt::print("{:>12} {:>8} {:>12.1f} {:>12.3f} {:>12.3f}\n", bytes, count, seconds * 1e6, algbw,
                 algbw * 2.0 * (n - 1) / n);
  }
  group->shutdown();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> rank_counts{2, 4};
  std::size_t max_bytes = std::size_t{64} << 20;
  std::string rdzv;
  bool cuda = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--ranks") {
      rank_counts.clear();
      for (std::size_t pos = 0; pos < value.size();) {
        const std::size_t comma = value.find(',', pos);
        rank_counts.push_back(std::atoi(value.substr(pos, comma - pos).c_str()));
        pos = comma == std::string::npos ? value.size() : comma + 1;
      }
    } else if (flag == "--max-mb") {
      max_bytes = static_cast<std::size_t>(std::atof(value.c_str()) * (1 << 20));
    } else if (flag == "--rdzv") {
      rdzv = value;
    } else if (flag == "--device" && (value == "cpu" || value == "cuda")) {
      cuda = value == "cuda";
    } else {
      fmt::print(stderr, "allreduce_benchmark: unknown option {}\n", flag);
      return 2;
    }
  }
  for (const int n : rank_counts) {
    if (n < 2) {
      fmt::print(stderr, "allreduce_benchmark: --ranks needs counts of at least 2\n");
      return 2;
    }
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / fmt::format("kiln-allreduce-{}-{}", ::getpid(), n);
    const std::string where = rdzv.empty() ? "file:" + dir.string() : rdzv;
    std::vector<pid_t> pids;
    for (int rank = 0; rank < n; ++rank) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        try {
          run_rank(rank, n, where, max_bytes, cuda);
        } catch (const std::exception& error) {
          fmt::print(stderr, "rank {}: {}\n", rank, error.what());
          ::_exit(1);
        }
        std::fflush(stdout);
        ::_exit(0);
      }
      pids.push_back(pid);
    }
    int failed = 0;
    for (const pid_t pid : pids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    std::filesystem::remove_all(dir);
    if (failed > 0) return 1;
  }
  return 0;
}
