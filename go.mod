module github.com/hy3d/hy3d

go 1.26
