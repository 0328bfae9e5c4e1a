module nest-etcd-lock/etcd-builds/server

go 1.26.0
