# The predictor image, for people who build with Docker. `deployer build` assembles
# the same layout without a Docker daemon (deployer/src/image/mod.rs); keep the two in
# lockstep:
#   /opt/predictor/bin/predictor              the binary (entrypoint)
#   /opt/predictor/bin/libonnxruntime.so      ONNX Runtime, found next to the executable
#   /opt/predictor/models/yolo11n.onnx        the bundled models (AGPL-3.0 weights): square,
#   /opt/predictor/models/yolo11n-rect.onnx   rect and rect INT8; the manifest's
#   /opt/predictor/models/yolo11n-rect-int8.onnx  `model.variant` picks one (MODEL_PATH)
#
# For Lambda, build a single-platform image without attestations (Lambda rejects
# image indexes):
#   docker buildx build --platform linux/amd64 --provenance=false --sbom=false -t predictor .
# Not buildable on machines without a Docker engine (such as this project's CI).

FROM rust:1.95-bookworm AS build
# cmake and nasm build the bundled libjpeg-turbo (linked statically: nothing to copy below).
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip cmake nasm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/setup-ort.sh \
 && cargo build --release --locked -p predictor \
 && mkdir -p /out/bin /out/models \
 && cp target/release/predictor /out/bin/ \
 && cp -L .ort/lib/libonnxruntime.so /out/bin/libonnxruntime.so \
 && cp predictor/models/yolo11n.onnx predictor/models/yolo11n-rect.onnx \
       predictor/models/yolo11n-rect-int8.onnx /out/models/

# glibc and libstdc++ (ONNX Runtime is C++), CA roots, nothing else.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out /opt/predictor
# The square model is found next to the binary (../models) when neither MODEL_PATH nor
# MODEL_S3_URI is set (the deployer sets one of them).
ENV PORT=8080 ORT_DYLIB_PATH=/opt/predictor/bin/libonnxruntime.so
EXPOSE 8080
ENTRYPOINT ["/opt/predictor/bin/predictor", "serve"]
