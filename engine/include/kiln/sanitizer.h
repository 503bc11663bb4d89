// Whether this code is built with AddressSanitizer (the asan and fuzz presets), for
// what it changes: it reserves terabytes of address space, so an address-space
// limit cannot be set, and its quarantine keeps freed memory resident.
#pragma once

namespace kiln {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace kiln
