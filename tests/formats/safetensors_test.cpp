#include <kiln/error.h>
#include <kiln/safetensors.h>

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "formats/python_check.h"

namespace kiln {
namespace {

using test::TempDir;

template <typename T>
std::vector<std::uint8_t> bytes_of(const std::vector<T>& values) {
  std::vector<std::uint8_t> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::uint64_t header_length(const std::string& file) {
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(file[i]);
  return length;
}

// One tensor of each dtype kiln knows, plus a scalar and an empty tensor.
struct Sample {
  std::vector<float> f32{1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
  std::vector<double> f64{3.141592653589793, -1e300};
  std::vector<std::uint16_t> bf16{0x3f80, 0xc000};  // 1.0, -2.0
  std::vector<std::uint16_t> f16{0x3c00, 0xc000};   // 1.0, -2.0
  std::vector<std::int8_t> i8{-128, 0, 127};
  std::vector<std::int16_t> i16{-32768, 32767};
  std::vector<std::int32_t> i32{-123456789};
  std::vector<std::int64_t> i64{std::int64_t{1} << 62, -1, 0};
  std::vector<std::uint8_t> u8{0, 1, 254, 255, 7};

  std::vector<TensorView> views() const {
    return {
        {"weights.f32", DType::F32, {2, 3}, f32.data()},
        {"f64", DType::F64, {2}, f64.data()},
        {"bf16", DType::BF16, {2}, bf16.data()},
        {"f16", DType::F16, {2}, f16.data()},
        {"i8", DType::I8, {3}, i8.data()},
        {"i16", DType::I16, {2}, i16.data()},
        {"scalar.i32", DType::I32, {}, i32.data()},
        {"i64", DType::I64, {3}, i64.data()},
        {"u8", DType::U8, {5}, u8.data()},
        {"empty", DType::F32, {0, 4}, nullptr},
    };
  }
};

TEST(Safetensors, RoundTripKeepsNamesShapesDtypesValuesAndMetadata) {
  const TempDir dir;
  const Sample sample;
  const std::map<std::string, std::string> metadata{
      {"format", "pt"}, {"kiln.note", "caf\u00e9 \u2713"}, {"empty", ""}};
  write_safetensors(dir / "t.safetensors", sample.views(), metadata);

  const SafetensorsFile file = read_safetensors(dir / "t.safetensors");
  EXPECT_EQ(file.metadata, metadata);
  const auto views = sample.views();
  ASSERT_EQ(file.tensors.size(), views.size());
  for (std::size_t i = 0; i < views.size(); ++i) {
    const StoredTensor& stored = file.tensors[i];  // file order is the order given
    EXPECT_EQ(stored.name, views[i].name);
    EXPECT_EQ(stored.dtype, views[i].dtype) << stored.name;
    EXPECT_EQ(stored.shape, views[i].shape) << stored.name;
    std::size_t count = 1;
    for (const auto d : views[i].shape) count *= static_cast<std::size_t>(d);
    ASSERT_EQ(stored.bytes.size(), count * size_of(views[i].dtype)) << stored.name;
    if (count > 0) {
      EXPECT_EQ(std::memcmp(stored.bytes.data(), views[i].data, stored.bytes.size()), 0)
          << stored.name;
    }
  }
  EXPECT_EQ(file.find("i64")->bytes, bytes_of(sample.i64));
  EXPECT_EQ(file.find("absent"), nullptr);
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  const TempDir dir;
  const std::vector<float> values{1, 2, 3};
  for (int extra = 0; extra < 16; ++extra) {
    const auto path = dir / ("pad" + std::to_string(extra) + ".safetensors");
    write_safetensors(path, {{"x", DType::F32, {3}, values.data()}},
                      {{"pad", std::string(static_cast<std::size_t>(extra), 'p')}});
    const std::string content = test::read_text(path);
    const std::uint64_t length = header_length(content);
    EXPECT_EQ(length % 8, 0u) << extra;
    ASSERT_EQ(content.size(), 8 + length + 12) << extra;
    EXPECT_EQ(content[8], '{');
    const auto json_end = content.find_last_of('}', 8 + length);
    EXPECT_EQ(content.substr(json_end + 1, 8 + length - json_end - 1),
              std::string(8 + length - json_end - 1, ' '));
    EXPECT_EQ(read_safetensors(path).tensors[0].bytes, bytes_of(values));
  }
}

TEST(Safetensors, EmptyFileHasOnlyAHeader) {
  const TempDir dir;
  write_safetensors(dir / "e.safetensors", {});
  const auto file = read_safetensors(dir / "e.safetensors");
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_TRUE(file.metadata.empty());
}

TEST(Safetensors, RewriteReplacesTheFileAtomically) {
  const TempDir dir;
  const std::vector<float> a{1}, b{2, 3};
  write_safetensors(dir / "m.safetensors", {{"x", DType::F32, {1}, a.data()}});
  write_safetensors(dir / "m.safetensors", {{"x", DType::F32, {2}, b.data()}});
  EXPECT_EQ(read_safetensors(dir / "m.safetensors").tensors[0].bytes, bytes_of(b));
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++entries;
  EXPECT_EQ(entries, 1) << "a temporary file was left behind";
}

TEST(Safetensors, WriterRefusesBadNamesAndMetadata) {
  const TempDir dir;
  const std::vector<float> v{1};
  const auto path = dir / "bad.safetensors";
  EXPECT_THROW(
      write_safetensors(path, {{"x", DType::F32, {1}, v.data()}, {"x", DType::F32, {1}, v.data()}}),
      DataError);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", DType::F32, {1}, v.data()}}), DataError);
  EXPECT_THROW(write_safetensors(path, {{"", DType::F32, {1}, v.data()}}), DataError);
  try {
    write_safetensors(path, {{"x", DType::F32, {1}, v.data()}}, {{"k", "\xff\xfe"}});
    ADD_FAILURE() << "invalid UTF-8 accepted";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ": ", 0), 0u) << e.what();
  }
  EXPECT_THROW(write_safetensors(path, {{"x", DType::F32, {2}, nullptr}}), InternalError);
  EXPECT_THROW(write_safetensors(path, {{"x", DType::F32, {-1}, v.data()}}), InternalError);
  EXPECT_FALSE(std::filesystem::exists(path));
}

// A file of raw bytes: an 8-byte length (the header's own unless `claimed`), then
// the header text and the data.
std::string raw_file(const std::string& header, const std::string& data = "",
                     std::optional<std::uint64_t> claimed = std::nullopt) {
  const std::uint64_t length = claimed.value_or(header.size());
  std::string content;
  for (int i = 0; i < 8; ++i) content.push_back(static_cast<char>(length >> (8 * i)));
  return content + header + data;
}

struct Malformed {
  const char* name;
  std::string content;
  const char* message;
};

std::vector<Malformed> malformed_cases() {
  const std::string f32x1 = R"("dtype":"F32","shape":[1])";
  return {
      {"too_short", "abc", "too short"},
      {"header_past_end", raw_file("{}", "", 1000), "runs past the end of the file"},
      {"header_claims_2_pow_60", raw_file("{}", "", std::uint64_t{1} << 60), "exceeds the limit"},
      {"header_over_cap", raw_file("{}", "", kSafetensorsMaxHeader + 1), "exceeds the limit"},
      {"empty_header", raw_file(""), "not valid JSON"},
      {"bad_json", raw_file(R"({"a": )"), "not valid JSON"},
      {"not_utf8", raw_file("{\"\xff\": 1}"), "not valid JSON"},
      {"not_an_object", raw_file("[1, 2]"), "not a JSON object"},
      {"entry_not_object", raw_file(R"({"a": 3})"), "entry is not a JSON object"},
      {"unknown_dtype", raw_file(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "x"),
       "unknown dtype \"BOOL\""},
      {"dtype_not_string",
       raw_file(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "xxxx"),
       "dtype is not a string"},
      {"missing_field", raw_file(R"({"a":{"dtype":"F32","shape":[1]}})", "xxxx"),
       "missing field \"data_offsets\""},
      {"unknown_field", raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0,4],"x":1}})", "xxxx"),
       "unknown field \"x\""},
      {"negative_shape",
       raw_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "xxxx"),
       "shape entry must be a non-negative integer"},
      {"offsets_not_pair", raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0]}})", "xxxx"),
       "data_offsets must be [begin, end]"},
      {"offsets_not_integers",
       raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0.0,4]}})", "xxxx"),
       "data_offsets begin must be a non-negative integer"},
      {"offsets_out_of_range", raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0,8]}})", "xxxx"),
       "lie outside the data section of 4 bytes"},
      {"offsets_reversed", raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[4,0]}})", "xxxx"),
       "lie outside the data section"},
      {"offsets_beyond_2_pow_64",
       raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0,18446744073709551616]}})", "xxxx"),
       "must be a non-negative integer"},
      {"size_mismatch",
       raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "xxxxxxxx"),
       "span 8 bytes, but shape [3] of \"F32\" needs 12"},
      {"shape_overflows",
       raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                "xxxx"),
       "is impossibly large"},
      // A zero extent makes 0 bytes, but the other extents must still fit: readers
      // compute a row's size from them.
      {"zero_extent_hides_overflow",
       raw_file(R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296,4294967296],)"
                R"("data_offsets":[0,0]}})"),
       "shape [0, 4294967296, 4294967296, 4294967296] of 4-byte elements is impossibly large"},
      {"overlapping",
       raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, 'x')),
       "tensors \"a\" and \"b\" overlap"},
      {"hole",
       raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0,4]},"b":{)" + f32x1 +
                    R"(,"data_offsets":[8,12]}})",
                std::string(12, 'x')),
       "4 bytes before tensor \"b\" belong to no tensor"},
      {"trailing_bytes", raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0,4]}})", "xxxxxxxx"),
       "4 bytes at the end of the data section belong to no tensor"},
      {"duplicate_name",
       raw_file(R"({"a":{)" + f32x1 + R"(,"data_offsets":[0,4]},"a":{)" + f32x1 +
                    R"(,"data_offsets":[4,8]}})",
                "xxxxxxxx"),
       "names tensor \"a\" twice"},
      {"metadata_not_string", raw_file(R"({"__metadata__":{"k":1}})"),
       "__metadata__ entry \"k\" is not a string"},
      {"metadata_not_object", raw_file(R"({"__metadata__":["k"]})"),
       "__metadata__ is not a JSON object"},
      {"nested_too_deep", raw_file(R"({"a":{"b":{"c":[1]}}})"), "nests deeper"},
  };
}

TEST(Safetensors, MalformedFilesAreDataErrorsNamingTheFile) {
  const TempDir dir;
  for (const Malformed& bad : malformed_cases()) {
    const auto path = dir / (std::string(bad.name) + ".safetensors");
    test::write_text(path, bad.content);
    try {
      read_safetensors(path);
      ADD_FAILURE() << bad.name << ": accepted";
    } catch (const DataError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << bad.name << ": " << message;
      EXPECT_NE(message.find(bad.message), std::string::npos) << bad.name << ": " << message;
    }
  }
}

TEST(Safetensors, MissingFileAndDirectoryAreDataErrors) {
  const TempDir dir;
  EXPECT_THROW(read_safetensors(dir / "absent.safetensors"), DataError);
  EXPECT_THROW(read_safetensors(dir.path()), DataError);
}

// Each malformed file, cut at every length, still fails cleanly (no crash, no
// other exception type): the header length check must hold for any prefix.
TEST(Safetensors, TruncatedFilesAreDataErrors) {
  const TempDir dir;
  const Sample sample;
  write_safetensors(dir / "good.safetensors", sample.views(), {{"k", "v"}});
  const std::string good = test::read_text(dir / "good.safetensors");
  for (std::size_t length = 0; length < good.size(); ++length) {
    test::write_text(dir / "cut.safetensors", good.substr(0, length));
    EXPECT_THROW(read_safetensors(dir / "cut.safetensors"), DataError) << "length " << length;
  }
}

TEST(Safetensors, PythonReadsWhatKilnWrites) {
  const TempDir dir;
  const Sample sample;
  write_safetensors(dir / "kiln.safetensors", sample.views(), {{"source", "kiln"}});
  const char* script = R"(
import sys
try:
    import numpy as np
    from safetensors import safe_open
except ImportError as e:
    print("skipped: python module missing:", e); sys.exit(77)
path = sys.argv[1]
# numpy has no bfloat16, so load_file() refuses the file; read tensor by tensor.
with safe_open(path, framework="np") as f:
    assert f.metadata() == {"source": "kiln"}, f.metadata()
    assert list(f.keys()) == sorted(["weights.f32", "f64", "bf16", "f16", "i8", "i16",
                                     "scalar.i32", "i64", "u8", "empty"]), list(f.keys())
    t = {name: f.get_tensor(name) for name in f.keys() if name != "bf16"}
expected = {
    "weights.f32": np.array([[1.5, -2.0, 0.0], [3.25, 1e-30, -7.0]], dtype=np.float32),
    "f64": np.array([3.141592653589793, -1e300], dtype=np.float64),
    "f16": np.array([1.0, -2.0], dtype=np.float16),
    "i8": np.array([-128, 0, 127], dtype=np.int8),
    "i16": np.array([-32768, 32767], dtype=np.int16),
    "scalar.i32": np.array(-123456789, dtype=np.int32),
    "i64": np.array([1 << 62, -1, 0], dtype=np.int64),
    "u8": np.array([0, 1, 254, 255, 7], dtype=np.uint8),
    "empty": np.zeros((0, 4), dtype=np.float32),
}
for name, want in expected.items():
    got = t[name]
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape)
    assert np.array_equal(got, want), (name, got, want)
try:
    import torch
except ImportError:
    torch = None  # bf16 is then checked by kiln's own round trip only
if torch is not None:
    with safe_open(path, framework="pt") as f:
        bf16 = f.get_tensor("bf16")
    assert bf16.dtype == torch.bfloat16 and bf16.tolist() == [1.0, -2.0], bf16
print("ok")
)";
  KILN_RUN_PYTHON_CHECK(dir.path(), script, {(dir / "kiln.safetensors").string()});
}

TEST(Safetensors, KilnReadsWhatPythonWrites) {
  const TempDir dir;
  const char* script = R"(
import sys
try:
    import numpy as np
    from safetensors.numpy import save_file
except ImportError as e:
    print("skipped: python module missing:", e); sys.exit(77)
save_file({
    "b.f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "a.i64": np.array([-5, 1 << 40], dtype=np.int64),
    "c.u8": np.array([9], dtype=np.uint8),
    "d.f64": np.array(2.5, dtype=np.float64),
    "e.i16": np.zeros((0,), dtype=np.int16),
}, sys.argv[1], metadata={"from": "python", "n": "5"})
)";
  KILN_RUN_PYTHON_CHECK(dir.path(), script, {(dir / "py.safetensors").string()});
  const SafetensorsFile file = read_safetensors(dir / "py.safetensors");
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"from", "python"}, {"n", "5"}}));
  ASSERT_EQ(file.tensors.size(), 5u);
  const StoredTensor* f32 = file.find("b.f32");
  ASSERT_NE(f32, nullptr);
  EXPECT_EQ(f32->dtype, DType::F32);
  EXPECT_EQ(f32->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(f32->bytes, bytes_of(std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1, 1.25f}));
  EXPECT_EQ(file.find("a.i64")->bytes,
            bytes_of(std::vector<std::int64_t>{-5, std::int64_t{1} << 40}));
  EXPECT_EQ(file.find("c.u8")->bytes, (std::vector<std::uint8_t>{9}));
  EXPECT_EQ(file.find("d.f64")->shape, (std::vector<std::int64_t>{}));
  EXPECT_EQ(file.find("d.f64")->bytes, bytes_of(std::vector<double>{2.5}));
  EXPECT_EQ(file.find("e.i16")->dtype, DType::I16);
  EXPECT_TRUE(file.find("e.i16")->bytes.empty());
}

}  // namespace
}  // namespace kiln
