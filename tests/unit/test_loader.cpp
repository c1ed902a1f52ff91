// Model loading through the public API: config inference, and every way a checkpoint can be wrong for RWKV-7.
// Bad files are made from the committed tiny fixture by dropping, reshaping or adding tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "io/checkpoint.h"
#include "rwkv/rwkv.h"
#include "testutil/testutil.h"
#include "testutil/writers.h"

namespace {

using rwkv::test::SafetensorsSpec;

const char* st_dtype(rwkv::DType t) {
    return t == rwkv::DType::F32 ? "F32" : t == rwkv::DType::F16 ? "F16" : "BF16";
}

std::vector<SafetensorsSpec> fixture_tensors() {
    auto ckpt = rwkv::Checkpoint::open(rwkv::test::fixture("tiny-bf16.safetensors"));
    std::vector<SafetensorsSpec> out;
    for (const rwkv::TensorView& t : ckpt->tensors()) {
        const uint8_t* p = static_cast<const uint8_t*>(t.data);
        out.push_back({t.name, st_dtype(t.dtype), t.shape, std::vector<uint8_t>(p, p + t.nbytes())});
    }
    return out;
}

SafetensorsSpec* find(std::vector<SafetensorsSpec>& v, const std::string& name) {
    for (auto& t : v)
        if (t.name == name) return &t;
    return nullptr;
}

struct LoadOutcome {
    rwkv_status status;
    std::string message;
    std::vector<std::string> warnings;
    rwkv_model_info info{};
};

LoadOutcome load(const std::vector<SafetensorsSpec>& tensors, const std::string& name) {
    const std::string path = rwkv::test::temp_path(name + ".safetensors");
    rwkv::test::write_file(path, rwkv::test::make_safetensors(tensors));
    LoadOutcome out;
    rwkv_log_set(
        [](rwkv_log_level level, const char* msg, void* user) {
            if (level >= RWKV_LOG_WARN) static_cast<std::vector<std::string>*>(user)->push_back(msg);
        },
        &out.warnings);
    rwkv_model_params p = rwkv_model_default_params();
    p.backend = RWKV_BACKEND_CPU;
    rwkv_model* model = nullptr;
    out.status = rwkv_model_load(path.c_str(), &p, &model);
    out.message = out.status == RWKV_STATUS_OK ? "" : rwkv_last_error_message();
    if (model) rwkv_model_get_info(model, &out.info);
    rwkv_model_free(model);
    rwkv_log_set(nullptr, nullptr);
    if (out.status != RWKV_STATUS_OK) {
        EXPECT_NE(out.message.find(path), std::string::npos) << "message should name the file: " << out.message;
    }
    return out;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

TEST(Loader, InfersTheConfigFromShapes) {
    LoadOutcome o = load(fixture_tensors(), "ok");
    ASSERT_EQ(o.status, RWKV_STATUS_OK) << o.message;
    EXPECT_EQ(o.info.n_layer, 2);
    EXPECT_EQ(o.info.n_embd, 128);
    EXPECT_EQ(o.info.n_head, 2);
    EXPECT_EQ(o.info.head_size, 64);
    EXPECT_EQ(o.info.n_vocab, 256);
    EXPECT_EQ(o.info.n_ffn, 256);
    EXPECT_EQ(o.info.d_decay, 16);
    EXPECT_EQ(o.info.d_aaa, 16);
    EXPECT_EQ(o.info.d_value, 8);
    EXPECT_EQ(o.info.d_gate, 32);
    EXPECT_EQ(o.info.weight_dtype, RWKV_DTYPE_BF16);
    EXPECT_EQ(o.info.state_bytes, 2 * (2 * 128 + 2 * 64 * 64) * 4);
    EXPECT_TRUE(o.warnings.empty());
}

TEST(Loader, MissingTensorIsNamed) {
    auto t = fixture_tensors();
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& s) { return s.name == "blocks.1.att.key.weight"; }), t.end());
    LoadOutcome o = load(t, "missing");
    EXPECT_EQ(o.status, RWKV_STATUS_FORMAT_ERROR);
    EXPECT_TRUE(contains(o.message, "missing tensor 'blocks.1.att.key.weight'")) << o.message;
}

TEST(Loader, ShapeMismatchSaysExpectedAndFound) {
    auto t = fixture_tensors();
    SafetensorsSpec* x = find(t, "blocks.0.att.x_r");
    ASSERT_TRUE(x);
    x->shape = {1, 1, 64};
    x->data.resize(64 * 2);
    LoadOutcome o = load(t, "shape");
    EXPECT_EQ(o.status, RWKV_STATUS_FORMAT_ERROR);
    EXPECT_TRUE(contains(o.message, "'blocks.0.att.x_r': expected [128], found [1, 1, 64]")) << o.message;

    t = fixture_tensors();
    SafetensorsSpec* k = find(t, "blocks.1.ffn.value.weight");
    k->shape = {256, 128};  // transposed
    o = load(t, "transposed");
    EXPECT_EQ(o.status, RWKV_STATUS_FORMAT_ERROR);
    EXPECT_TRUE(contains(o.message, "expected [128, 256], found [256, 128]")) << o.message;
}

TEST(Loader, UnknownExtraTensorWarnsAndLoads) {
    auto t = fixture_tensors();
    t.push_back({"blocks.0.att.mystery", "F32", {4}, std::vector<uint8_t>(16, 0)});
    LoadOutcome o = load(t, "extra");
    EXPECT_EQ(o.status, RWKV_STATUS_OK) << o.message;
    ASSERT_EQ(o.warnings.size(), 1u);
    EXPECT_TRUE(contains(o.warnings[0], "unknown tensor")) << o.warnings[0];
    EXPECT_TRUE(contains(o.warnings[0], "blocks.0.att.mystery")) << o.warnings[0];
}

TEST(Loader, LayerZeroValueResidualTensorsAreIgnoredSilently) {
    auto t = fixture_tensors();
    for (std::string n : {"v0", "v1", "v2"}) {
        SafetensorsSpec copy = *find(t, "blocks.1.att." + n);
        copy.name = "blocks.0.att." + n;
        t.push_back(copy);
    }
    LoadOutcome o = load(t, "layer0v");
    EXPECT_EQ(o.status, RWKV_STATUS_OK) << o.message;
    EXPECT_TRUE(o.warnings.empty());
}

TEST(Loader, DeepEmbedVariantIsRejected) {
    auto t = fixture_tensors();
    t.push_back({"blocks.0.ffn.s_emb.weight", "BF16", {256, 32}, std::vector<uint8_t>(256 * 32 * 2, 1)});
    LoadOutcome o = load(t, "deepembed");
    EXPECT_EQ(o.status, RWKV_STATUS_UNSUPPORTED);
    EXPECT_TRUE(contains(o.message, "DeepEmbed")) << o.message;
}

TEST(Loader, PileVocabularyIsRejected) {
    auto t = fixture_tensors();
    for (const char* name : {"emb.weight", "head.weight"}) {
        SafetensorsSpec* s = find(t, name);
        s->shape = {50304, 128};
        s->data.assign(50304 * 128 * 2, 0x3f);
    }
    LoadOutcome o = load(t, "pile");
    EXPECT_EQ(o.status, RWKV_STATUS_UNSUPPORTED);
    EXPECT_TRUE(contains(o.message, "Pile")) << o.message;
}

TEST(Loader, OtherHeadSizesAndOlderVersionsAreRejected) {
    auto t = fixture_tensors();
    find(t, "blocks.0.att.r_k")->shape = {4, 32};
    LoadOutcome o = load(t, "headsize");
    EXPECT_EQ(o.status, RWKV_STATUS_UNSUPPORTED);
    EXPECT_TRUE(contains(o.message, "head size 32")) << o.message;

    t = fixture_tensors();
    t.push_back({"blocks.0.att.time_decay", "F32", {128}, std::vector<uint8_t>(512, 0)});
    o = load(t, "v6");
    EXPECT_EQ(o.status, RWKV_STATUS_UNSUPPORTED);
    EXPECT_TRUE(contains(o.message, "RWKV-4/5/6")) << o.message;

    t = fixture_tensors();
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& s) { return s.name.find("k_k") != std::string::npos; }),
            t.end());
    o = load(t, "nokk");
    EXPECT_EQ(o.status, RWKV_STATUS_UNSUPPORTED);
    EXPECT_TRUE(contains(o.message, "not an RWKV-7")) << o.message;
}

TEST(Loader, NotAModelAtAll) {
    std::vector<SafetensorsSpec> t = {{"weight", "F32", {2, 2}, std::vector<uint8_t>(16, 0)}};
    LoadOutcome o = load(t, "notrwkv");
    EXPECT_EQ(o.status, RWKV_STATUS_FORMAT_ERROR);
    EXPECT_TRUE(contains(o.message, "not an RWKV checkpoint")) << o.message;
}

TEST(Loader, MissingAndEmptyFiles) {
    rwkv_model* m = nullptr;
    const std::string missing = rwkv::test::temp_path("does-not-exist.pth");
    EXPECT_EQ(rwkv_model_load(missing.c_str(), nullptr, &m), RWKV_STATUS_IO_ERROR);
    EXPECT_TRUE(contains(rwkv_last_error_message(), missing));
    const std::string empty = rwkv::test::temp_path("empty.pth");
    rwkv::test::write_file(empty, {});
    EXPECT_EQ(rwkv_model_load(empty.c_str(), nullptr, &m), RWKV_STATUS_FORMAT_ERROR);
    EXPECT_TRUE(contains(rwkv_last_error_message(), empty));
    EXPECT_EQ(m, nullptr);
}

TEST(Loader, PthAndSafetensorsGiveIdenticalTensors) {
    auto pth = rwkv::Checkpoint::open(rwkv::test::fixture("tiny-bf16.pth"));
    auto st = rwkv::Checkpoint::open(rwkv::test::fixture("tiny-bf16.safetensors"));
    ASSERT_EQ(pth->tensors().size(), st->tensors().size());
    for (const rwkv::TensorView& a : pth->tensors()) {
        const rwkv::TensorView* b = st->find(a.name);
        ASSERT_TRUE(b) << a.name;
        EXPECT_EQ(a.dtype, b->dtype) << a.name;
        EXPECT_EQ(a.shape, b->shape) << a.name;
        EXPECT_EQ(std::memcmp(a.data, b->data, a.nbytes()), 0) << a.name;
    }
}

}  // namespace
