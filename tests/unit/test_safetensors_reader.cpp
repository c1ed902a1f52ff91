// The .safetensors reader: a file written by the safetensors package (tests/fixtures/io) read bit-exactly, and
// malformed headers and offsets rejected with a FORMAT_ERROR whose message names the file and the problem.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors_reader.h"
#include "testutil/testutil.h"
#include "testutil/writers.h"

namespace rwkv {
namespace {

using test::Bytes;
using test::SafetensorsSpec;

// Opening `path` must fail with `status` and a message "<path>: ..." containing `phrase`.
::testing::AssertionResult fails_with(const std::string& path, rwkv_status status, const std::string& phrase) {
    try {
        auto ckpt = Checkpoint::open(path);
        return ::testing::AssertionFailure() << path << " opened, with " << ckpt->tensors().size() << " tensors";
    } catch (const Error& e) {
        std::string msg = e.what();
        if (e.status() != status)
            return ::testing::AssertionFailure() << "status " << e.status() << " (expected " << status << "): " << msg;
        if (msg.rfind(path + ": ", 0) != 0)
            return ::testing::AssertionFailure() << "message does not start with the path: " << msg;
        if (msg.find(phrase) == std::string::npos)
            return ::testing::AssertionFailure() << "message lacks '" << phrase << "': " << msg;
        return ::testing::AssertionSuccess() << msg;
    }
}

std::string write_temp(const std::string& name, const Bytes& bytes) {
    std::string path = test::temp_path(name);
    test::write_file(path, bytes);
    return path;
}

::testing::AssertionResult bytes_fail_with(const Bytes& bytes, const std::string& phrase) {
    return fails_with(write_temp("bad.safetensors", bytes), RWKV_STATUS_FORMAT_ERROR, phrase);
}

// A header with one F32 tensor "x" of `shape` at `offsets`, and `data_bytes` bytes of data.
Bytes one_tensor(const std::string& dtype, const std::string& shape, const std::string& offsets, size_t data_bytes) {
    std::string h = R"({"x":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
    return test::make_safetensors_raw(h, Bytes(data_bytes, 0));
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

std::vector<SafetensorsSpec> small_file() {
    return {{"model.embeddings.weight", "BF16", {3, 4}, test::bf16_bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -12})},
            {"model.layers.0.attn.r_k", "F16", {2, 2}, test::f16_bytes({0.5f, -0.25f, 65504.0f, 6e-8f})},
            {"lm_head.weight", "F32", {1, 1, 2}, test::f32_bytes({3.25f, -0.0f})},
            {"scalar", "F32", {}, test::f32_bytes({42.0f})},
            {"empty", "F16", {0, 5}, {}}};
}

void expect_small_file(const Checkpoint& c) {
    auto want = small_file();
    ASSERT_EQ(c.tensors().size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {  // file order, which is the order written
        const TensorView& t = c.tensors()[i];
        EXPECT_EQ(t.name, want[i].name);
        EXPECT_EQ(t.shape, want[i].shape);
        ASSERT_EQ(t.nbytes(), want[i].data.size());
        if (t.nbytes()) {
            EXPECT_EQ(std::memcmp(t.data, want[i].data.data(), t.nbytes()), 0) << t.name;
        }
    }
    EXPECT_EQ(c.find("model.layers.0.attn.r_k")->dtype, DType::F16);
    EXPECT_EQ(c.find("model.embeddings.weight")->dtype, DType::BF16);
    EXPECT_EQ(c.find("scalar")->numel(), 1);
    EXPECT_EQ(c.find("nope"), nullptr);
}

// ------------------------------------------------------------------ accepted files

TEST(SafetensorsReader, GenuineFile) {
    std::ifstream f(test::fixture("io/expected.json"));
    nlohmann::json want = nlohmann::json::parse(f)["tensors.safetensors"];
    auto ckpt = Checkpoint::open(test::fixture("io/tensors.safetensors"));
    EXPECT_EQ(ckpt->format(), CheckpointFormat::Safetensors);
    ASSERT_EQ(ckpt->tensors().size(), want["tensors"].size());
    for (size_t i = 0; i < ckpt->tensors().size(); i++) {
        const nlohmann::json& w = want["tensors"][i];
        const TensorView& t = ckpt->tensors()[i];
        SCOPED_TRACE(t.name);
        EXPECT_EQ(t.name, w["name"].get<std::string>());
        EXPECT_STREQ(dtype_name(t.dtype), w["dtype"].get<std::string>().c_str());
        EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>());
        std::vector<float> values;
        for (double v : w["values"]) values.push_back(static_cast<float>(v));
        EXPECT_TRUE(bit_equal(test::to_f32(t), values));
        // Zero copy: the data is inside the mapping.
        auto p = static_cast<const uint8_t*>(t.data);
        EXPECT_TRUE(p >= ckpt->file().data() && p < ckpt->file().data() + ckpt->file().size());
    }
}

TEST(SafetensorsReader, SyntheticFile) {
    expect_small_file(*Checkpoint::open(write_temp("small.safetensors", test::make_safetensors(small_file()))));
}

TEST(SafetensorsReader, UnalignedDataIsCopied) {
    // An unpadded header of odd length puts the data at an odd file offset.
    std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1],)"
                    R"("data_offsets":[8,10]}} )";
    if (h.size() % 2 == 0) h += ' ';
    Bytes data = test::f32_bytes({1.5f, -2.0f});
    Bytes b16 = test::bf16_bytes({7.0f});
    data.insert(data.end(), b16.begin(), b16.end());
    auto ckpt = Checkpoint::open(write_temp("odd.safetensors", test::make_safetensors_raw(h, data, false)));
    const TensorView* a = ckpt->find("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data) % 4, 0u);
    EXPECT_TRUE(bit_equal(test::to_f32(*a), {1.5f, -2.0f}));
    EXPECT_TRUE(bit_equal(test::to_f32(*ckpt->find("b")), {7.0f}));
}

TEST(SafetensorsReader, MetadataAndEmptyHeader) {
    EXPECT_EQ(Checkpoint::open(write_temp("e.safetensors", test::make_safetensors_raw("{}", {})))->tensors().size(),
              0u);
    std::string h =
        R"({"__metadata__":{"format":"pt","note":"x"},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    EXPECT_EQ(
        Checkpoint::open(write_temp("m.safetensors", test::make_safetensors_raw(h, Bytes(4, 0))))->tensors().size(),
        1u);
}

// ------------------------------------------------------------------ rejected files

TEST(SafetensorsReader, HeaderLengthPastTheEnd) {
    Bytes b = test::make_safetensors(small_file());
    test::put_le64(b, 0, b.size());  // claims more than the file holds
    EXPECT_TRUE(bytes_fail_with(b, "safetensors: header length"));
    EXPECT_TRUE(bytes_fail_with(b, "runs past the end of the file"));
    test::put_le64(b, 0, ~uint64_t(0));
    EXPECT_TRUE(bytes_fail_with(b, "header length 18446744073709551615 runs past the end of the file"));
}

TEST(SafetensorsReader, HeaderLongerThanTheLimit) {
    // A sparse file just over the limit, so that the length is inside the file but above 100 MiB.
    std::string h = "{";
    Bytes b = test::make_safetensors_raw(h, {}, false);
    test::put_le64(b, 0, kSafetensorsMaxHeader + 1);
    std::string path = write_temp("long.safetensors", b);
    std::filesystem::resize_file(path, kSafetensorsMaxHeader + 16);
    EXPECT_TRUE(fails_with(path, RWKV_STATUS_FORMAT_ERROR, "exceeds the limit of 104857600"));
    std::filesystem::remove(path);
}

TEST(SafetensorsReader, NotJson) {
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw("{not json", {}), "header is not valid JSON"));
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw("{\"x\":1}}", {}), "header is not valid JSON"));
}

TEST(SafetensorsReader, NotUtf8) {
    std::string h = "{\"x\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw(h, Bytes(4, 0)), "(or not valid UTF-8)"));
}

TEST(SafetensorsReader, WrongDtype) {
    EXPECT_TRUE(bytes_fail_with(one_tensor("I64", "[1]", "[0,8]", 8),
                                "tensor 'x': dtype 'I64' is not supported (F32, F16 and BF16 only)"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("f32", "[1]", "[0,4]", 4), "dtype 'f32' is not supported"));
}

TEST(SafetensorsReader, OverlappingOffsets) {
    std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    EXPECT_TRUE(
        bytes_fail_with(test::make_safetensors_raw(h, Bytes(12, 0)), "tensors 'a' [0, 8) and 'b' [4, 12) overlap"));
    h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw(h, Bytes(8, 0)), "overlap"));
}

TEST(SafetensorsReader, OutOfRangeOffsets) {
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[2]", "[0,8]", 4),
                                "tensor 'x': data_offsets [0,8] run past the end of the data (4 bytes)"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[2]", "[8,0]", 8), "has begin > end"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[2]", "[0,4]", 8), "span 4 bytes, but shape [2] of F32 needs 8"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1]", "[0,18446744073709551615]", 8), "run past the end"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1]", "[0]", 8), "not a [begin, end] pair"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1]", "[-4,4]", 8), "not a [begin, end] pair"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1]", "[0,4.0]", 8), "not a [begin, end] pair"));
}

TEST(SafetensorsReader, AbsurdShapes) {
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1048576,1048576]", "[0,4398046511104]", 8), "run past the end"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1099511627776,1099511627776]", "[0,8]", 8), "too many elements"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[536870912,536870912,16]", "[0,8]", 8), "too many elements"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[-1]", "[0,8]", 8), "has a bad dimension"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "[1.5]", "[0,8]", 8), "has a bad dimension"));
    EXPECT_TRUE(bytes_fail_with(one_tensor("F32", "7", "[0,8]", 8), "shape is not an array"));
}

TEST(SafetensorsReader, MalformedEntries) {
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw(R"({"x":1})", {}), "tensor 'x': entry is not an object"));
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw(R"({"x":{"dtype":"F32","shape":[1]}})", Bytes(4, 0)),
                                "needs dtype, shape and data_offsets"));
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw(R"({"__metadata__":{"a":1}})", {}),
                                "__metadata__ value 'a' is not a string"));
    EXPECT_TRUE(
        bytes_fail_with(test::make_safetensors_raw(R"({"__metadata__":[]})", {}), "__metadata__ is not an object"));
    std::string dup = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    EXPECT_TRUE(bytes_fail_with(test::make_safetensors_raw(dup, Bytes(8, 0)), "tensor 'x' appears twice"));
}

TEST(SafetensorsReader, EveryTruncationIsRejected) {
    Bytes b = test::make_safetensors(small_file());
    test::MemFile file;
    for (size_t n = 0; n < b.size(); n++) {
        file.write(Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(n)));
        EXPECT_THROW(Checkpoint::open(file.path()), Error) << "length " << n;
    }
}

TEST(SafetensorsReader, ByteFlipsNeverCrash) {
    Bytes b = test::make_safetensors(small_file());
    test::MemFile file;
    for (size_t i = 0; i < b.size(); i++) {
        for (uint8_t mask : {0x01, 0x20, 0x80, 0xff}) {
            Bytes c = b;
            c[i] ^= mask;
            file.write(c);
            try {
                Checkpoint::open(file.path());
            } catch (const Error& e) {
                EXPECT_EQ(e.status(), RWKV_STATUS_FORMAT_ERROR) << e.what();
            }
        }
    }
}

}  // namespace
}  // namespace rwkv
