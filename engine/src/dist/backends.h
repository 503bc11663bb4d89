// Private to dist: the state groups over the same ranks share, and the backends'
// factories, called by init_process_group and ProcessGroup::device_group.
#pragma once

#include <kiln/dist/process_group.h>
#include <kiln/dist/store.h>

#include <chrono>
#include <memory>
#include <string>

#include "dist/watchdog.h"

namespace kiln::dist {

struct GroupState {
  std::chrono::milliseconds timeout;
  // One numbering for all of a job's groups: the watchdog's board compares the
  // collectives ranks entered, whichever group issued them.
  std::uint64_t sequence = 0;
  std::string failure;  // set by the first failed collective: the groups are unusable
  std::shared_ptr<Store> store;
  std::unique_ptr<Watchdog> watchdog;
};

std::unique_ptr<ProcessGroup> make_gloo_group(const DistEnv& env, std::shared_ptr<GroupState> state,
                                              const GroupOptions& options);
#ifdef KILN_HAVE_CUDA
// NCCL on `device`; the communicator's unique id travels through the store under
// `id_key` (nccl_group_cuda.cpp).
std::unique_ptr<ProcessGroup> make_nccl_group(int rank, int size, Device device,
                                              std::shared_ptr<GroupState> state,
                                              const std::string& id_key);
#endif

}  // namespace kiln::dist
