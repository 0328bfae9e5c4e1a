// Placeholder that marks the module root: builds pass -modfile=test/etcd-builds/<line>/<module>/go.mod
// (see test/support/etcd-builds.ts), which pins the etcd version.
module nest-etcd-lock/etcd-builds/server

go 1.26.0
