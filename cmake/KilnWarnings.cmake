# Warnings are errors for kiln's own code; third-party headers come in as SYSTEM
# includes through their imported targets and stay out of it.
# GCC 12 at -O3 reports false -Wrestrict hits inside std::string (GCC PR 105329,
# PR 105651); that check is off for GCC. -Wmissing-field-initializers is off
# because kiln's public structs (StageType, Artifact, ProgressUpdate) are meant to
# be filled with designated initializers that leave defaulted members out.
function(kiln_target_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror -Wno-missing-field-initializers>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-restrict>
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra>)
endfunction()
