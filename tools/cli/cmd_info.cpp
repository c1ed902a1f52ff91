// rwkv-cli info: what a checkpoint holds.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "commands.h"
#include "common.h"

namespace cli {
namespace {

const char* dtype_name(rwkv_dtype t) {
    return t == RWKV_DTYPE_F32 ? "f32" : t == RWKV_DTYPE_F16 ? "f16" : "bf16";
}

}  // namespace

Runner add_info(CLI::App& root) {
    auto* cmd = root.add_subcommand("info", "Show a model's format, shape, parameter count and state size");
    auto opts = std::make_shared<ModelOptions>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("-m,--model", opts->model_path, "Model file (.pth or .safetensors)")->required();
    cmd->add_flag("--json", *json, "Print JSON");
    return [opts, json] {
        rwkv_model_params p = rwkv_model_default_params();
        p.backend = RWKV_BACKEND_CPU;
        rwkv::Model model(opts->model_path, p);
        rwkv_model_info i = model.info();
        nlohmann::ordered_json j = {
            {"file", opts->model_path},
            {"format", i.format == RWKV_FORMAT_PTH ? "pth" : "safetensors"},
            {"dtype", dtype_name(i.weight_dtype)},
            {"n_layer", i.n_layer},
            {"n_embd", i.n_embd},
            {"n_head", i.n_head},
            {"head_size", i.head_size},
            {"n_vocab", i.n_vocab},
            {"n_ffn", i.n_ffn},
            {"lora", {{"decay", i.d_decay}, {"a", i.d_aaa}, {"value", i.d_value}, {"gate", i.d_gate}}},
            {"n_params", i.n_params},
            {"n_bytes", i.n_bytes},
            {"state_bytes", i.state_bytes},
        };
        if (*json) {
            std::printf("%s\n", j.dump(2).c_str());
            return 0;
        }
        std::printf("file        %s\n", opts->model_path.c_str());
        std::printf("format      %s, %s weights\n", j["format"].get<std::string>().c_str(), dtype_name(i.weight_dtype));
        std::printf("layers      %d\n", i.n_layer);
        std::printf("width       %d (%d heads of %d)\n", i.n_embd, i.n_head, i.head_size);
        std::printf("vocab       %d\n", i.n_vocab);
        std::printf("ffn width   %d\n", i.n_ffn);
        std::printf("lora        decay %d, a %d, value %d, gate %d\n", i.d_decay, i.d_aaa, i.d_value, i.d_gate);
        std::printf("parameters  %lld (%.3f B)\n", (long long)i.n_params, i.n_params / 1e9);
        std::printf("bytes       %lld (%.1f MB)\n", (long long)i.n_bytes, i.n_bytes / 1e6);
        std::printf("state       %lld bytes per sequence\n", (long long)i.state_bytes);
        return 0;
    };
}

}  // namespace cli
