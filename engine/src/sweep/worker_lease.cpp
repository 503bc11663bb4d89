#include "sweep/worker_lease.h"

namespace kiln::sweep {
namespace fs = std::filesystem;

namespace {
fs::path lock_file(const fs::path& dir, const std::string& id) { return dir / (id + ".lock"); }
}  // namespace

WorkerLease::WorkerLease(const fs::path& workers_dir, const std::string& worker_id)
    : lease_(lock_file(workers_dir, worker_id)) {}

bool worker_alive(const fs::path& workers_dir, const std::string& worker_id) {
  return lease_held(lock_file(workers_dir, worker_id));
}

}  // namespace kiln::sweep
