resource "aws_ecr_repository" "llmo" {
  name                 = "llmo"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
}

# Model artifacts pushed with `llmo push` (OCI) can also live in ECR.
resource "aws_ecr_repository" "models" {
  name                 = "llmo-models"
  image_tag_mutability = "MUTABLE"
}

resource "aws_efs_file_system" "models" {
  creation_token   = "${local.name}-models"
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"
  tags             = { Name = "${local.name}-models" }
}

resource "aws_efs_mount_target" "models" {
  count           = var.az_count
  file_system_id  = aws_efs_file_system.models.id
  subnet_id       = aws_subnet.private[count.index].id
  security_groups = [aws_security_group.efs.id]
}

resource "aws_efs_access_point" "models" {
  file_system_id = aws_efs_file_system.models.id
  posix_user {
    uid = 65532
    gid = 65532
  }
  root_directory {
    path = "/llmo"
    creation_info {
      owner_uid   = 65532
      owner_gid   = 65532
      permissions = "0750"
    }
  }
}

resource "aws_cloudwatch_log_group" "llmo" {
  for_each          = toset(["gateway", "model", "cache", "storage"])
  name              = "/ecs/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
}
