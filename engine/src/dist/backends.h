// Private to dist: the backends' factories, called by init_process_group.
#pragma once

#include <kiln/dist/process_group.h>
#include <kiln/dist/store.h>

#include <memory>

#include "dist/watchdog.h"

namespace kiln::dist {

std::unique_ptr<ProcessGroup> make_gloo_group(const DistEnv& env, std::shared_ptr<Store> store,
                                              std::unique_ptr<Watchdog> watchdog,
                                              const GroupOptions& options);
// ConfigError in a build without CUDA.
std::unique_ptr<ProcessGroup> make_nccl_group(const DistEnv& env, std::shared_ptr<Store> store,
                                              std::unique_ptr<Watchdog> watchdog,
                                              const GroupOptions& options);

}  // namespace kiln::dist
