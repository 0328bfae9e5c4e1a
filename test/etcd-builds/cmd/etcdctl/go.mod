module nest-etcd-lock/etcd-builds/etcdctl

go 1.26.0
