// Plugin "validate": the stages `validate` (schema, ranges, NaN/Inf, labels,
// duplicates, train/test overlap) and `drift` (PSI and KS against a reference).
#include <kiln/plugin.h>

namespace kiln::validate {
StageType validate_stage_type();
StageType drift_stage_type();
}  // namespace kiln::validate

namespace {

void register_stages(kiln::StageRegistrar& registrar) {
  registrar.add(kiln::validate::validate_stage_type());
  registrar.add(kiln::validate::drift_stage_type());
}

}  // namespace

KILN_PLUGIN("validate", "0.1.0", register_stages)
