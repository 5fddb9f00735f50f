// The CUDA plugin's probe and open contract. The no-driver test runs on every machine without
// an NVIDIA driver (CI, developer laptops): the plugin must load there (static cudart) and
// reject with the driver's own error text. Model validation happens before any device call, so
// unsupported models are rejected the same way with or without a GPU.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <vector>

#include "cuda/cuda_plugin.hpp"
#include "reference/test_model_view.hpp"
#include "support/skip.hpp"

using apr::test::CudaPlugin;
using apr::test::CudaSession;
using apr::test::TestModelView;
using apr::test::TinyShape;

TEST_CASE("cuda: without a driver the probe rejects with the driver's error", "[cuda]") {
    CudaPlugin plugin;
    CHECK(std::string(plugin.desc().name) == "cuda");
    CHECK(plugin.desc().abi_version == APR_BACKEND_ABI_VERSION);
    CHECK((plugin.desc().flags & APR_BACKEND_FLAG_GPU) != 0);
    APR_SKIP_TEST_UNLESS(!std::filesystem::exists("/dev/nvidiactl"),
                         "this machine has an NVIDIA driver (/dev/nvidiactl); the GPU tests cover it");
    apr_device_info info{};
    info.struct_size = sizeof info;
    CHECK(plugin.desc().probe(&info) == APR_ERR_NO_DEVICE);
    const std::string error = plugin.last_error();
    INFO(error);
    CHECK(error.find("cudaGetDeviceCount failed: cudaErrorInsufficientDriver") != std::string::npos);
    CHECK(info.description[0] == '\0');
}

TEST_CASE("cuda: the probe describes the device", "[cuda]") {
    CudaPlugin plugin;
    std::string why;
    apr_device_info info{};
    APR_SKIP_TEST_UNLESS(plugin.device_present(why, &info), why);
    CHECK(std::strlen(info.description) > 0);
    CHECK(std::strlen(info.driver) > 0);
    CHECK(info.memory_bytes > 0);
    std::cout << "[cuda] device: " << info.description << " (" << info.driver << "), "
              << info.memory_bytes / (1 << 20) << " MiB" << std::endl;
}

TEST_CASE("cuda: unsupported models are rejected at open with the problem named", "[cuda]") {
    // Runs with or without a GPU: the view is checked before the device is touched.
    CudaPlugin plugin;
    TinyShape shape;
    TestModelView model(shape);
    model.add_random_weights(3, APR_TYPE_F16);

    apr_model_view bad_arch = model.view();
    bad_arch.arch = 9;
    bad_arch.arch_name = "mamba";
    {
        CudaSession s(plugin, bad_arch, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("mamba") != std::string::npos);
        CHECK(s.get() == nullptr);
    }
    apr_model_view missing = model.view();
    std::vector<apr_tensor_view> fewer;
    for (uint32_t i = 0; i < missing.n_tensors; ++i)
        if (std::string(missing.tensors[i].name) != "blk.1.ffn_up.weight") fewer.push_back(missing.tensors[i]);
    missing.tensors = fewer.data();
    missing.n_tensors = uint32_t(fewer.size());
    {
        CudaSession s(plugin, missing, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("blk.1.ffn_up.weight") != std::string::npos);
    }
    apr_model_view odd_type = model.view();
    std::vector<apr_tensor_view> retyped(odd_type.tensors, odd_type.tensors + odd_type.n_tensors);
    for (auto& t : retyped)
        if (std::string(t.name) == "blk.0.attn_q.weight") t.type = 10;  // Q2_K: no decoder
    odd_type.tensors = retyped.data();
    {
        CudaSession s(plugin, odd_type, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("blk.0.attn_q.weight") != std::string::npos);
    }
    apr_model_view wrong_shape = model.view();
    std::vector<apr_tensor_view> reshaped(wrong_shape.tensors, wrong_shape.tensors + wrong_shape.n_tensors);
    for (auto& t : reshaped)
        if (std::string(t.name) == "blk.0.ffn_down.weight") std::swap(t.ne[0], t.ne[1]);
    wrong_shape.tensors = reshaped.data();
    {
        CudaSession s(plugin, wrong_shape, 16);
        CHECK(s.open_status() == APR_ERR_UNSUPPORTED);
        CHECK(s.open_error().find("blk.0.ffn_down.weight") != std::string::npos);
    }
    apr_session* out = reinterpret_cast<apr_session*>(&plugin);
    CHECK(plugin.desc().open(nullptr, nullptr, &out) == APR_ERR_INVALID_ARGUMENT);
    CHECK(out == nullptr);
    plugin.desc().close(nullptr);  // accepted
}
