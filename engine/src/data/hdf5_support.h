// Small helpers over the HDF5 C API for the dataset files: an owning handle, error
// translation into DataError, the element-type mapping and string attributes.
// Internal to engine/src/data.
#pragma once

#include <kiln/dtype.h>

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace kiln::data::hdf5 {

// Owns one HDF5 identifier and closes it with the matching H5?close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const noexcept { return id_; }
  // Closes now and reports whether that worked (a file close flushes, and can fail).
  bool close() noexcept;

 private:
  void reset() noexcept;
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Turns off HDF5's printing of its error stack for the calling thread (the library
// is built thread-safe, where that setting is per thread); failures are reported
// through DataError instead. Called at every entry point of the data area.
void silence_errors() noexcept;

// Throws DataError "<file>: <what> (HDF5: <innermost HDF5 message>)".
[[noreturn]] void fail(const std::filesystem::path& file, std::string_view what);

// Returns `id` when it is valid, else fail(file, what).
hid_t check(hid_t id, const std::filesystem::path& file, std::string_view what);
void check_status(herr_t status, const std::filesystem::path& file, std::string_view what);

// File-access properties for kiln's dataset files: HDF5's advisory file lock off.
// A version is written in a private scratch directory and never modified once
// renamed into place, so the lock protects nothing, while on parallel file
// systems mounted without flock support (some Lustre and NFS setups) it makes
// every open fail.
Handle file_access(const std::filesystem::path& file);

// The little-endian HDF5 type of a kiln dtype (Array::bytes is little-endian).
// f16 is IEEE half; bf16 is a custom float with bfloat16's fields.
Handle type_of(DType dtype);
// The kiln dtype of a dataset's stored HDF5 type; DataError if kiln has none.
DType dtype_of(hid_t type, const std::filesystem::path& file, std::string_view array);

// Bytes of array `array` of `file`, refused (DataError naming the file, the array
// and the size) before anything is allocated when the declared size cannot be real:
// more than the file could inflate to (deflate expands at most 1032-fold, zlib's
// technical details) and more than the import memory budget. A chunked dataset
// whose chunks were never written takes no space, so a tiny file may declare any
// size; HDF5 would fill it with the fill value, and kiln would allocate it first.
std::uint64_t check_declared_size(const std::filesystem::path& file, std::string_view array,
                                  std::span<const std::int64_t> shape, DType dtype);

// KILN_IMPORT_MEMORY_BUDGET (bytes) if set, else half the physical memory.
std::uint64_t import_memory_budget();

void write_string_attribute(hid_t object, const char* name, std::string_view value,
                            const std::filesystem::path& file);
// DataError naming the attribute if it is missing or not a string.
std::string read_string_attribute(hid_t object, const char* name,
                                  const std::filesystem::path& file);

}  // namespace kiln::data::hdf5
