module nest-etcd-lock/etcd-builds/mutex

go 1.26.0
