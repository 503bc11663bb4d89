// Writes the fuzz targets' seeds: small files of every format, written by kiln
// itself where kiln has a writer (HDF5 versions, safetensors, models, checkpoints)
// and byte by byte after the format's description where it has only a reader
// (IDX, NPY, CSV, store requests). The output is committed under tests/fuzz/seeds;
// the pipeline seeds are copies of configs/*.yaml.
//
//   build-cpu/bin/kiln_fuzz_seed_writer tests/fuzz/seeds
#include <kiln/data/dataset.h>
#include <kiln/nn/model.h>
#include <kiln/nn/optimizer.h>
#include <kiln/safetensors.h>

#include <zip.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "fuzz/checkpoint_model.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;
using Bytes = std::string;

namespace {

void write(const fs::path& file, const Bytes& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

void write_gzip(const fs::path& file, const Bytes& bytes) {
  fs::create_directories(file.parent_path());
  gzFile out = gzopen(file.c_str(), "wb9");
  gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(out);
}

Bytes big_endian_u32(std::uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

Bytes idx(std::uint8_t type_code, const std::vector<std::uint32_t>& shape, std::size_t item) {
  Bytes bytes = {0, 0, static_cast<char>(type_code), static_cast<char>(shape.size())};
  std::size_t elements = 1;
  for (const std::uint32_t dim : shape) {
    bytes += big_endian_u32(dim);
    elements *= dim;
  }
  for (std::size_t i = 0; i < elements * item; ++i) bytes += static_cast<char>(i * 37 % 251);
  return bytes;
}

Bytes npy(const std::string& descr, const std::string& shape, std::size_t bytes_of_data,
          int major = 1) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const std::size_t prefix = major == 1 ? 10 : 12;
  header.resize((prefix + header.size() + 1 + 63) / 64 * 64 - prefix - 1, ' ');
  header += '\n';
  Bytes bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  const std::uint32_t length = static_cast<std::uint32_t>(header.size());
  bytes.append(reinterpret_cast<const char*>(&length), major == 1 ? 2 : 4);
  bytes += header;
  for (std::size_t i = 0; i < bytes_of_data; ++i) bytes += static_cast<char>(i % 7);
  return bytes;
}

Bytes store_field(const std::string& field) {
  const auto size = static_cast<std::uint32_t>(field.size());
  return Bytes(reinterpret_cast<const char*>(&size), sizeof size) + field;
}

// An NPZ archive as numpy writes it: members stored (savez) or deflated
// (savez_compressed).
void write_zip(const fs::path& file, const std::vector<std::pair<std::string, Bytes>>& members,
               bool deflate) {
  fs::create_directories(file.parent_path());
  int code = 0;
  zip_t* archive = zip_open(file.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  for (const auto& [name, bytes] : members) {
    const zip_int64_t index = zip_file_add(
        archive, name.c_str(), zip_source_buffer(archive, bytes.data(), bytes.size(), 0), 0);
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                             deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  zip_close(archive);
}

void write_data_seeds(const fs::path& out) {
  write(out / "idx/images-u8", idx(0x08, {3, 2, 2}, 1));
  write_gzip(out / "idx/labels-u8.gz", idx(0x08, {3}, 1));
  write(out / "idx/i16", idx(0x0B, {2, 3}, 2));
  write(out / "idx/i32", idx(0x0C, {4}, 4));
  write(out / "idx/f32", idx(0x0D, {2, 2}, 4));
  write_gzip(out / "idx/f64.gz", idx(0x0E, {1, 2, 1}, 8));

  write(out / "npy/u1.npy", npy("|u1", "(3, 2)", 6));
  write(out / "npy/i4.npy", npy("<i4", "(4,)", 16));
  write(out / "npy/i8.npy", npy("<i8", "(2, 1, 2)", 32));
  write(out / "npy/f4.npy", npy("<f4", "(2, 3)", 24));
  write(out / "npy/f8-v2.npy", npy("<f8", "(3,)", 24, 2));

  write(out / "csv/labels.csv", "a,b,label\n1,2.5,0\n-3,4e-2,1\n0.5,nan,2\n");
  write(out / "csv/float-labels.csv", "x0,label,x1\n1,0.5,2\n3,1.5,4\n");
  write(out / "csv/no-label.csv", "f\n1\n2\n3\n");
  write_gzip(out / "csv/gzip.csv.gz", "p,q,label\n1,2,3\n4,5,6\n");
  write(out / "csv/quoted.csv",
        "id,\"a, b\",label\r\n\"x \"\"1\"\"\",\"2\",0\r\n\"two\nlines\",,1\r\n");
  write(out / "csv/semicolons.csv", "r1;0;1.5;nan\nr2;1;;2\n");

  write_zip(out / "npz/stored.npz",
            {{"x.npy", npy("|u1", "(3, 2)", 6)}, {"y.npy", npy("<i8", "(3,)", 24)}}, false);
  write_zip(out / "npz/deflated.npz",
            {{"x.npy", npy("<f4", "(2, 3)", 24)}, {"y.npy", npy("<i4", "(2,)", 8)}}, true);

  const Bytes set = "S" + store_field("rank/0") + store_field("tcp://10.0.0.1:29500");
  const Bytes get = "G" + store_field("rank/0");
  write(out / "store_message/set-get", set + get + "G" + store_field("missing"));
  write(out / "store_message/partial", set + "S" + store_field("k").substr(0, 3));
  write(out / "store_message/unknown", get + "X");
}

void write_kiln_seeds(const fs::path& out, const fs::path& scratch) {
  using kiln::data::Array;
  Array x{"x", kiln::DType::U8, {4, 2, 2}, std::vector<std::uint8_t>(16, 7)};
  Array y{"y", kiln::DType::U8, {4}, {0, 1, 2, 1}};
  Array f{"x", kiln::DType::F32, {2, 3}, std::vector<std::uint8_t>(24, 0)};
  Array l{"y", kiln::DType::I64, {2}, std::vector<std::uint8_t>(16, 0)};
  kiln::data::DatasetStore store(scratch);
  fs::create_directories(out / "hdf5");
  fs::copy_file(store.put("images", {x, y}, {{"format", "idx"}}).file, out / "hdf5/u8-images.h5",
                fs::copy_options::overwrite_existing);
  fs::copy_file(store.put("table", {f, l}, {{"format", "csv"}}).file, out / "hdf5/f32-table.h5",
                fs::copy_options::overwrite_existing);

  const float weights[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f};
  const std::int64_t counts[2] = {10, 20};
  fs::create_directories(out / "safetensors");
  kiln::write_safetensors(
      out / "safetensors/two.safetensors",
      {{"w", kiln::DType::F32, {2, 3}, weights}, {"counts", kiln::DType::I64, {2}, counts}},
      {{"note", "seed"}});
  kiln::write_safetensors(out / "safetensors/empty.safetensors", {});

  // Model specs as Model::load reads them (model_spec_fuzz.cpp wraps the text).
  fs::create_directories(out / "model_spec");
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"mlp.json", R"({"input": [1, 28, 28], "layers": ["flatten", {"linear": {"out": 16}},
              "relu", {"linear": {"out": 10}}]})"},
           {"cnn.json", R"({"input": [1, 8, 8], "layers": [{"conv2d": {"out": 4, "kernel": 3,
              "padding": 1}}, "relu", {"maxpool2d": {"kernel": 2}}, {"batchnorm2d": {}},
              {"residual": ["gelu"]}, "global_avgpool", {"dropout": {"p": 0.25}},
              {"layernorm": {}}, {"linear": {"out": 3}}]})"},
           {"blocks.json", R"({"input": [4], "blocks": {"mlp": [{"linear": {"out": 4}}, "relu"]},
              "layers": [{"block": "mlp"}, {"residual": {"block": "mlp"}}, {"avgpool2d": {}}]})"},
       })
    write(out / "model_spec" / name, text);
  // The spec kiln stores, defaults filled in.
  const kiln::nn::Model cnn = kiln::nn::Model::build(
      nlohmann::json::parse(R"({"input": [1, 8, 8], "layers": [{"conv2d": {"out": 2}}, "relu",
         {"maxpool2d": {}}, "flatten", {"linear": {"out": 3}}]})"),
      0);
  write(out / "model_spec/stored.json", cnn.spec().dump());

  // Checkpoints of checkpoint_model.h's model, after one step of each optimizer.
  kiln::nn::Model model = kiln::nn::Model::build(kiln::fuzz::checkpoint_model_spec(), 0);
  fs::create_directories(out / "checkpoint");
  const auto adamw = kiln::nn::make_adamw({});
  const auto sgd = kiln::nn::make_sgd(kiln::fuzz::checkpoint_sgd());
  kiln::train::save_checkpoint(out / "checkpoint/fresh.safetensors", model, *adamw, {0, 0, 0});
  adamw->step(model.parameters());
  kiln::train::save_checkpoint(out / "checkpoint/adamw.safetensors", model, *adamw, {1, 0, 1});
  sgd->step(model.parameters());
  kiln::train::save_checkpoint(out / "checkpoint/sgd.safetensors", model, *sgd, {5, 2, 3});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: kiln_fuzz_seed_writer <seeds directory>\n";
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path scratch = fs::temp_directory_path() / "kiln-fuzz-seed-writer";
  fs::remove_all(scratch);
  write_data_seeds(out);
  write_kiln_seeds(out, scratch);
  fs::remove_all(scratch);
  return 0;
}
