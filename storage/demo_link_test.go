package storage_test

import (
	"referrals/storage"
	"referrals/storage/demo"
)

func init() { storage.SetDemo(demo.Generate, demo.Seed) }
