// A plugin claiming an ABI the engine does not speak: the loader must refuse it
// before calling anything but the entry point.
#include <kiln/plugin.h>

namespace {
void register_stages(kiln::StageRegistrar&) {}
}  // namespace

extern "C" __attribute__((visibility("default"))) const KilnPluginDescriptor* kiln_plugin_entry() {
  static const KilnPluginDescriptor descriptor{KILN_ABI_VERSION + 1, "bad_abi", "0.0.1", "test",
                                               &register_stages};
  return &descriptor;
}
