# Multi-stage build of the canaryop manager: a static binary on distroless,
# running as a non-root user. The Git write-back needs no git binary (go-git).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY gitops/ gitops/
COPY internal/ internal/
# make docker-build passes the version canaryop_build_info reports.
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X github.com/atzedevries/canaryop/internal/opmetrics.Version=${VERSION}" -o /out/manager ./cmd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
