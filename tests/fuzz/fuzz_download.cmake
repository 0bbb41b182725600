# SPDX-License-Identifier: Apache-2.0
# The artifact download request parser is one pure file of fleetd/channel.
target_sources(${target} PRIVATE
	${PROJECT_SOURCE_DIR}/fleetd/channel/download_req.c)
