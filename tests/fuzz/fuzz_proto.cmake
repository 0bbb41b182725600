# SPDX-License-Identifier: Apache-2.0
# The libraries are built without coverage instrumentation, so libFuzzer
# would see only this harness: compile the codec into the target itself
# (its symbols take precedence over libfleetcommon's copy).
target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/common/proto/proto.c)
