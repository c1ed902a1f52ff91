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
    opts->backend = "cpu";  // info reads the file; --backend cuda/auto also shows what the device holds
    cmd->add_option("-m,--model", opts->model_path, "Model file (.pth or .safetensors)")->required();
    cmd->add_option("--backend", opts->backend, "Load on this backend and show its memory: cpu (default), cuda, auto")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    cmd->add_option("--device", opts->device, "CUDA device ordinal")->check(CLI::Range(0, 1023));
    cmd->add_flag("--json", *json, "Print JSON");
    return [opts, json] {
        rwkv::Model model(opts->model_path, opts->params());
        rwkv_model_info i = model.info();
        const rwkv_memory_info mem = model.memory();
        // A context, for the size of its scratch (default parameters: 256 tokens per chunk).
        rwkv_memory_info ctx_mem = mem;
        {
            rwkv::Context ctx(model);
            ctx_mem = ctx.memory();
        }
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
            {"backend", mem.backend == RWKV_BACKEND_CUDA ? "cuda" : "cpu"},
            {"device", mem.device},
            {"device_name", mem.device_name},
            {"backend_weight_bytes", mem.weight_bytes},
            {"context_scratch_bytes", ctx_mem.scratch_bytes},
            {"device_free_bytes", mem.device_free_bytes},
            {"device_total_bytes", mem.device_total_bytes},
            {"cuda_graphs", ctx_mem.cuda_graphs != 0},
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
        if (mem.backend == RWKV_BACKEND_CUDA) {
            std::printf("backend     cuda, device %d (%s), %s weights\n", mem.device, mem.device_name,
                        dtype_name(mem.weight_dtype));
            std::printf(
                "gpu memory  weights %.1f MiB, context scratch %.1f MiB (256 tokens per chunk), state "
                "%.2f MiB per sequence; %.0f MiB free of %.0f MiB\n",
                mem.weight_bytes / 1048576.0, ctx_mem.scratch_bytes / 1048576.0, mem.state_bytes / 1048576.0,
                mem.device_free_bytes / 1048576.0, mem.device_total_bytes / 1048576.0);
            std::printf("cuda graphs %s\n", ctx_mem.cuda_graphs ? "on" : "off");
        } else {
            std::printf("backend     cpu, weights %.1f MiB in memory, context scratch %.1f MiB\n",
                        mem.weight_bytes / 1048576.0, ctx_mem.scratch_bytes / 1048576.0);
        }
        return 0;
    };
}

}  // namespace cli
