// Registration that raises a plain std::exception.
#include <kiln/plugin.h>

#include <stdexcept>

namespace {
void register_stages(kiln::StageRegistrar&) {
  throw std::runtime_error("cannot initialise toy device");
}
}  // namespace

KILN_PLUGIN("throws", "0.1.0", register_stages)
