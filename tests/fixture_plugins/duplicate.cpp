// Registers "toy_source", which the toy plugin registers too.
#include <kiln/plugin.h>

namespace {
void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(
      {.name = "toy_source", .summary = "a second toy_source", .run = [](kiln::StageContext&) {}});
}
}  // namespace

KILN_PLUGIN("duplicate", "0.1.0", register_stages)
