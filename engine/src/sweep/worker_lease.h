// Whether a sweep worker still lives: each worker holds a ProcessLease (<kiln/fs.h>)
// on <sweep>/workers/<id>.lock for as long as its process runs. The kernel drops the
// lock when the process ends, however it ends (kill -9 included), so a trial left
// RUNNING by a worker whose lock is free is stale and can be re-queued.
#pragma once

#include <kiln/fs.h>

#include <filesystem>
#include <string>

namespace kiln::sweep {

class WorkerLease {
 public:
  // StageError when the lock file cannot be created or is held (a worker id twice).
  WorkerLease(const std::filesystem::path& workers_dir, const std::string& worker_id);

 private:
  ProcessLease lease_;
};

// False when no process holds worker `worker_id`'s lock (or it never had one).
bool worker_alive(const std::filesystem::path& workers_dir, const std::string& worker_id);

}  // namespace kiln::sweep
