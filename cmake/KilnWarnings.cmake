# Warnings are errors for kiln's own code; third-party headers come in as SYSTEM
# includes through their imported targets and stay out of it.
# GCC 12 at -O3 reports false -Wrestrict hits inside std::string (GCC PR 105329,
# PR 105651); that check is off for GCC.
function(kiln_target_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-restrict>
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Wall,-Wextra>)
endfunction()
