# Decides HY3D_TENSORRT_ENABLED from HY3D_WITH_TENSORRT (ON/OFF/AUTO) and, when
# enabled, sets HY3D_TENSORRT_INCLUDE_DIRS and HY3D_TENSORRT_LIBRARIES.
#
# HY3D_TENSORRT_COMPILE_ONLY checks the backend on a machine with TensorRT's
# and CUDA's headers but no libnvinfer (docs/tensorrt.md): the library keeps
# its CPU-only TensorRT entry points, and the target hy3d_trt_compile_check
# compiles trt_engine.cpp and the GPU tests to objects, linking nothing.
option(HY3D_TENSORRT_COMPILE_ONLY "Compile the TensorRT backend and its GPU tests to objects only (no libnvinfer needed)" OFF)

set(HY3D_TENSORRT_ENABLED OFF)
if(NOT HY3D_WITH_TENSORRT STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  # find_* results are cached: forget them when TENSORRT_ROOT changes, or a
  # reconfigure would keep linking the previous installation.
  if(NOT "${TENSORRT_ROOT}" STREQUAL "${HY3D_TENSORRT_ROOT_SEEN}")
    unset(HY3D_NVINFER_INCLUDE CACHE)
    unset(HY3D_NVINFER_LIB CACHE)
    unset(HY3D_NVINFER_PLUGIN_LIB CACHE)
    set(HY3D_TENSORRT_ROOT_SEEN "${TENSORRT_ROOT}" CACHE INTERNAL "TENSORRT_ROOT of the cached TensorRT paths")
  endif()
  find_path(HY3D_NVINFER_INCLUDE NvInfer.h HINTS ${TENSORRT_ROOT} ENV TENSORRT_ROOT PATH_SUFFIXES include)
  find_library(HY3D_NVINFER_LIB nvinfer HINTS ${TENSORRT_ROOT} ENV TENSORRT_ROOT PATH_SUFFIXES lib lib64)
  find_library(HY3D_NVINFER_PLUGIN_LIB nvinfer_plugin HINTS ${TENSORRT_ROOT} ENV TENSORRT_ROOT PATH_SUFFIXES lib lib64)
  if(HY3D_TENSORRT_COMPILE_ONLY)
    if(NOT CUDAToolkit_FOUND OR NOT HY3D_NVINFER_INCLUDE)
      message(FATAL_ERROR "HY3D_TENSORRT_COMPILE_ONLY needs CUDA's headers (found: ${CUDAToolkit_FOUND}) and "
                          "NvInfer.h (${HY3D_NVINFER_INCLUDE}); set TENSORRT_ROOT")
    endif()
    set(HY3D_TENSORRT_INCLUDE_DIRS ${HY3D_NVINFER_INCLUDE} ${CUDAToolkit_INCLUDE_DIRS})
    add_library(hy3d_trt_compile_check OBJECT native/src/trt_engine.cpp)
    target_include_directories(hy3d_trt_compile_check PRIVATE native/include native/src)
    # TensorRT's and CUDA's headers are not warning-free under -Werror.
    target_include_directories(hy3d_trt_compile_check SYSTEM PRIVATE ${HY3D_TENSORRT_INCLUDE_DIRS})
    target_compile_options(hy3d_trt_compile_check PRIVATE ${HY3D_WARNINGS})
    target_compile_definitions(hy3d_trt_compile_check PRIVATE HY3D_HAVE_TENSORRT=1)
    message(STATUS "hy3d: TensorRT compile-only check against ${HY3D_NVINFER_INCLUDE}")
  elseif(CUDAToolkit_FOUND AND HY3D_NVINFER_INCLUDE AND HY3D_NVINFER_LIB AND HY3D_NVINFER_PLUGIN_LIB)
    set(HY3D_TENSORRT_ENABLED ON)
    set(HY3D_TENSORRT_INCLUDE_DIRS ${HY3D_NVINFER_INCLUDE} ${CUDAToolkit_INCLUDE_DIRS})
    set(HY3D_TENSORRT_LIBRARIES ${HY3D_NVINFER_LIB} ${HY3D_NVINFER_PLUGIN_LIB} CUDA::cudart)
  elseif(HY3D_WITH_TENSORRT STREQUAL "ON")
    message(FATAL_ERROR "HY3D_WITH_TENSORRT=ON but CUDA (found: ${CUDAToolkit_FOUND}), NvInfer.h "
                        "(${HY3D_NVINFER_INCLUDE}), libnvinfer (${HY3D_NVINFER_LIB}) or libnvinfer_plugin "
                        "(${HY3D_NVINFER_PLUGIN_LIB}) is missing; set TENSORRT_ROOT")
  endif()
endif()
