// Packed int8 dot products (SPV_KHR_integer_dot_product's OpSDot, which glslang 12 has no GLSL
// built-in for): the sum of the products of the four signed bytes of a and of b. Only in
// shader variants the host runs where the device enables VK_KHR_shader_integer_dot_product.
#extension GL_EXT_spirv_intrinsics : require
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8_packed(int a, int b, spirv_literal int packed_vector_format);
int sdot4x8(uint a, uint b) { return sdot4x8_packed(int(a), int(b), 0); }  // 0: PackedVectorFormat4x8Bit
