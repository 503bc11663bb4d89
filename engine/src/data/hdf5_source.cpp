#include "data/hdf5_source.h"

#include <kiln/data/array_choice.h>
#include <kiln/error.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace kiln::data::hdf5 {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kDatasetsListed = 20;

std::vector<std::string> components_of(std::string_view path) {
  std::vector<std::string> components;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    if (slash > start) components.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return components;
}

struct Listing {
  std::vector<std::string> names;
  bool more = false;
};

herr_t list_dataset(hid_t, const char* name, const H5O_info_t* info, void* data) {
  auto& listing = *static_cast<Listing*>(data);
  if (info->type != H5O_TYPE_DATASET) return 0;
  if (listing.names.size() == kDatasetsListed) {
    listing.more = true;
    return 1;  // enough: stop visiting
  }
  listing.names.push_back(std::string("/") + name);
  return 0;
}

// The first datasets of the file, for an error about a path that is not one.
std::string dataset_list(hid_t file) {
  Listing listing;
  if (H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, list_dataset, &listing, H5O_INFO_BASIC) < 0)
    H5Eclear2(H5E_DEFAULT);
  if (listing.names.empty()) return "it has none";
  return fmt::format("it has {}{}", fmt::join(listing.names, ", "), listing.more ? ", ..." : "");
}

[[noreturn]] void refuse(const fs::path& path, std::string_view array, std::string_view why) {
  throw DataError(fmt::format("{}: array '{}' {}", path.string(), array, why));
}

std::string_view class_name(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

// h5py's bool: an enum over one byte with exactly FALSE = 0 and TRUE = 1.
bool is_h5py_bool(hid_t type) {
  if (H5Tget_class(type) != H5T_ENUM || H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2)
    return false;
  for (const auto& [name, value] : {std::pair{"FALSE", 0}, std::pair{"TRUE", 1}}) {
    std::uint8_t stored = 0xff;
    if (H5Tenum_valueof(type, name, &stored) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (stored != value) return false;
  }
  return true;
}

Handle copy_of(hid_t type) { return Handle(H5Tcopy(type), H5Tclose); }

// Debian 12 packages that add HDF5 filters, by filter id (the HDF Group's registry).
std::string_view package_of(H5Z_filter_t filter) {
  switch (filter) {
    case 32000:
      return "hdf5-plugin-lzf";
    case 32001:
      return "hdf5-filter-plugin-blosc-serial";
    case 307:
    case 32004:
    case 32008:
      return "hdf5-filter-plugin";
    case 32013:
      return "hdf5-filter-plugin-zfp-serial";
    default:
      return {};
  }
}

std::string plugin_path() {
  std::vector<std::string> paths;
  unsigned count = 0;
  if (H5PLsize(&count) >= 0)
    for (unsigned i = 0; i < count; ++i) {
      std::array<char, 4096> buffer{};
      if (H5PLget(i, buffer.data(), buffer.size()) > 0) paths.emplace_back(buffer.data());
    }
  H5Eclear2(H5E_DEFAULT);
  return paths.empty() ? "none" : fmt::format("{}", fmt::join(paths, ":"));
}

}  // namespace

std::vector<ArraySpec> array_specs(const std::vector<std::string>& entries) {
  std::vector<ArraySpec> specs;
  for (const ArrayChoice& choice : parse_array_choices(entries))
    specs.push_back(
        {choice.name, choice.member.starts_with('/') ? choice.member : "/" + choice.member});
  return specs;
}

ArraySpec parse_array_spec(const std::string& entry) { return array_specs({entry}).front(); }

std::string format_array_spec(const ArraySpec& spec) { return spec.name + "=" + spec.path; }

Handle open_source_array(hid_t file, const ArraySpec& spec, const fs::path& path) {
  const std::vector<std::string> components = components_of(spec.path);
  if (components.empty()) refuse(path, spec.path, "is the root group, not an array");
  std::string prefix;
  for (const std::string& component : components) {
    prefix += "/" + component;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw DataError(fmt::format("{}: no array at '{}' ({} is missing; {})", path.string(),
                                  spec.path, prefix, dataset_list(file)));
    }
    H5L_info_t link{};
    check_status(H5Lget_info(file, prefix.c_str(), &link, H5P_DEFAULT), path,
                 "cannot read the link " + prefix);
    if (link.type != H5L_TYPE_HARD && link.type != H5L_TYPE_SOFT)
      refuse(path, spec.path,
             fmt::format("is reached through {}, a link to another file: kiln imports only "
                         "what the file itself holds",
                         prefix));
  }
  H5O_info_t root{}, target{};
  check_status(H5Oget_info_by_name2(file, "/", &root, H5O_INFO_BASIC, H5P_DEFAULT), path,
               "cannot read the root group");
  if (H5Oget_info_by_name2(file, spec.path.c_str(), &target, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
    hdf5::fail(path, fmt::format("cannot open '{}' (a dangling link?)", spec.path));
  if (target.fileno != root.fileno)
    refuse(path, spec.path, "lies in another file: kiln imports only what the file itself holds");
  if (target.type != H5O_TYPE_DATASET)
    refuse(path, spec.path,
           target.type == H5O_TYPE_GROUP ? "is a group, not an array" : "is not an array");
  Handle dataset(
      check(H5Dopen2(file, spec.path.c_str(), H5P_DEFAULT), path, "cannot open array " + spec.path),
      H5Dclose);
  const Handle properties(check(H5Dget_create_plist(dataset.get()), path,
                                "cannot read the storage of array " + spec.path),
                          H5Pclose);
  if (H5Pget_layout(properties.get()) == H5D_VIRTUAL)
    refuse(path, spec.path,
           "is a virtual dataset, made of other files: kiln imports only what the file itself "
           "holds");
  if (H5Pget_external_count(properties.get()) > 0)
    refuse(path, spec.path,
           "keeps its data in external files: kiln imports only what the file itself holds");
  return dataset;
}

SourceType source_type_of(hid_t dataset, const fs::path& file, std::string_view array) {
  const Handle type(
      check(H5Dget_type(dataset), file, fmt::format("cannot read the type of array '{}'", array)),
      H5Tclose);
  const H5T_class_t type_class = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  SourceType source;
  if (type_class == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_NONE && size > 1) {
    if (size != 2 && size != 4 && size != 8)
      refuse(file, array, fmt::format("holds {}-byte unsigned integers", size));
    source.stored = fmt::format("u{}", size * 8);
    source.dtype = size == 2 ? DType::I32 : DType::I64;
    source.memory = copy_of(size == 2 ? H5T_STD_I32LE : size == 4 ? H5T_STD_I64LE : H5T_STD_U64LE);
    source.check_u64 = size == 8;
    return source;
  }
  if (is_h5py_bool(type.get())) {
    source.stored = "bool";
    source.dtype = DType::U8;
    source.memory = copy_of(type.get());
    return source;
  }
  if (type_class != H5T_INTEGER && type_class != H5T_FLOAT)
    refuse(file, array,
           fmt::format("holds {} elements ({} bytes each); kiln imports numbers: u8 u16 u32 u64 "
                       "i8 i16 i32 i64 f16 bf16 f32 f64, and bool",
                       class_name(type_class), size));
  source.dtype = dtype_of(type.get(), file, array);
  source.memory = type_of(source.dtype);
  return source;
}

void check_u64_range(const std::uint8_t* bytes, std::int64_t elements, std::int64_t first_element,
                     const fs::path& file, std::string_view array) {
  for (std::int64_t i = 0; i < elements; ++i) {
    std::uint64_t value = 0;
    std::memcpy(&value, bytes + i * 8, 8);
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      refuse(file, array,
             fmt::format("holds u64 element {} = {}, past 2^63-1: kiln stores u64 as i64",
                         first_element + i, value));
  }
}

void check_filters(hid_t dataset, const fs::path& file, std::string_view array) {
  const Handle properties(check(H5Dget_create_plist(dataset), file,
                                fmt::format("cannot read the filters of array '{}'", array)),
                          H5Pclose);
  const int count = H5Pget_nfilters(properties.get());
  for (int i = 0; i < count; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t values = 0;
    std::array<char, 256> name{};
    const H5Z_filter_t filter = H5Pget_filter2(properties.get(), static_cast<unsigned>(i), &flags,
                                               &values, nullptr, name.size(), name.data(), &config);
    if (filter < 0) hdf5::fail(file, fmt::format("cannot read the filters of array '{}'", array));
    const htri_t available = H5Zfilter_avail(filter);
    unsigned info = 0;
    const bool decodes = available > 0 && H5Zget_filter_info(filter, &info) >= 0 &&
                         (info & H5Z_FILTER_CONFIG_DECODE_ENABLED) != 0;
    H5Eclear2(H5E_DEFAULT);
    if (decodes) continue;
    const std::string_view package = package_of(filter);
    refuse(
        file, array,
        fmt::format("is compressed with HDF5 filter {}{}, which this libhdf5 cannot load "
                    "(plugin path: {}){}",
                    filter, name[0] != '\0' ? fmt::format(" ({})", name.data()) : "", plugin_path(),
                    package.empty() ? "" : fmt::format("; on Debian, install {}", package)));
  }
}

}  // namespace kiln::data::hdf5
