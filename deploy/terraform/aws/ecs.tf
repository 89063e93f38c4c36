resource "aws_ecs_cluster" "main" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# Service discovery: model tasks register A records under model.llmo.local,
# which the gateway resolves (--replica-dns), as it does with a Kubernetes
# headless Service.
resource "aws_service_discovery_private_dns_namespace" "main" {
  name = "${var.environment}.llmo.local"
  vpc  = aws_vpc.main.id
}

resource "aws_service_discovery_service" "svc" {
  for_each = toset(["model", "cache", "storage"])
  name     = each.key
  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.main.id
    routing_policy = "MULTIVALUE"
    dns_records {
      ttl  = 10
      type = "A"
    }
  }
  health_check_custom_config {
    failure_threshold = 1
  }
}

# --- GPU capacity (EC2) for the model service ---
data "aws_ssm_parameter" "ecs_gpu_ami" {
  name = "/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id"
}

resource "aws_iam_role" "instance" {
  name = "${local.name}-ecs-instance"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "instance" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${local.name}-ecs-instance"
  role = aws_iam_role.instance.name
}

resource "aws_launch_template" "gpu" {
  name_prefix   = "${local.name}-gpu-"
  image_id      = data.aws_ssm_parameter.ecs_gpu_ami.value
  instance_type = var.model_instance_type
  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }
  vpc_security_group_ids = [aws_security_group.services.id]
  user_data = base64encode(<<-EOT
    #!/bin/bash
    echo ECS_CLUSTER=${aws_ecs_cluster.main.name} >> /etc/ecs/ecs.config
    echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config
  EOT
  )
}

resource "aws_autoscaling_group" "gpu" {
  name_prefix           = "${local.name}-gpu-"
  min_size              = var.model_min_count
  max_size              = var.model_max_count
  vpc_zone_identifier   = aws_subnet.private[*].id
  protect_from_scale_in = true
  launch_template {
    id      = aws_launch_template.gpu.id
    version = "$Latest"
  }
  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }
}

resource "aws_ecs_capacity_provider" "gpu" {
  name = "${local.name}-gpu"
  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.gpu.arn
    managed_termination_protection = "ENABLED"
    managed_scaling {
      status          = "ENABLED"
      target_capacity = 100
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", aws_ecs_capacity_provider.gpu.name]
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# --- IAM for tasks ---
resource "aws_iam_role" "task_execution" {
  name = "${local.name}-task-execution"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "task_execution" {
  role       = aws_iam_role.task_execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

locals {
  image = "${aws_ecr_repository.llmo.repository_url}:${var.image_tag}"
  common_env = [
    { name = "LLMO_HOST", value = "0.0.0.0" },
    { name = "LOG_FORMAT", value = "json" },
    { name = "DRAIN_TIMEOUT", value = "${var.drain_timeout_seconds}s" },
  ]
  dns = aws_service_discovery_private_dns_namespace.main.name
  log_config = { for k, g in aws_cloudwatch_log_group.llmo : k => {
    logDriver = "awslogs"
    options = {
      "awslogs-group"         = g.name
      "awslogs-region"        = var.region
      "awslogs-stream-prefix" = k
    }
  } }
  # ECS sends SIGKILL stopTimeout seconds after SIGTERM; leave room to drain.
  stop_timeout = var.drain_timeout_seconds + 10
}

# --- task definitions ---
resource "aws_ecs_task_definition" "gateway" {
  family                   = "${local.name}-gateway"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.gateway_cpu
  memory                   = var.gateway_memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  container_definitions = jsonencode([{
    name        = "gateway"
    image       = local.image
    essential   = true
    command     = ["serve", "gateway", "--port", "8000", "--dashboard-port", "8080", "--replica-dns", "model.${local.dns}:8001", "--cache", "http://cache.${local.dns}:8002", "--storage", "http://storage.${local.dns}:8003"]
    environment = local.common_env
    portMappings = [
      { containerPort = 8000, protocol = "tcp" },
      { containerPort = 8080, protocol = "tcp" },
    ]
    healthCheck      = { command = ["CMD", "/usr/local/bin/llmo", "healthcheck", "http://127.0.0.1:8000/ready"], interval = 10, timeout = 3, retries = 3 }
    stopTimeout      = local.stop_timeout
    logConfiguration = local.log_config["gateway"]
  }])
}

resource "aws_ecs_task_definition" "model" {
  family                   = "${local.name}-model"
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  cpu                      = var.model_cpu
  memory                   = var.model_memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  volume {
    name = "models"
    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.models.id
      transit_encryption = "ENABLED"
      authorization_config {
        access_point_id = aws_efs_access_point.models.id
        iam             = "DISABLED"
      }
    }
  }
  container_definitions = jsonencode([{
    name        = "model"
    image       = local.image
    essential   = true
    command     = ["serve", "model", "--port", "8001", "--model", var.model_ref, "--storage", "http://storage.${local.dns}:8003", "--model-cache", "/models/cache"]
    environment = local.common_env
    portMappings = [
      { containerPort = 8001, protocol = "tcp" },
    ]
    mountPoints          = [{ sourceVolume = "models", containerPath = "/models", readOnly = false }]
    resourceRequirements = var.model_gpus > 0 ? [{ type = "GPU", value = tostring(var.model_gpus) }] : null
    healthCheck          = { command = ["CMD", "/usr/local/bin/llmo", "healthcheck", "http://127.0.0.1:8001/ready"], interval = 10, timeout = 3, retries = 3, startPeriod = 120 }
    stopTimeout          = local.stop_timeout
    logConfiguration     = local.log_config["model"]
  }])
}

resource "aws_ecs_task_definition" "cache" {
  family                   = "${local.name}-cache"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 1024
  execution_role_arn       = aws_iam_role.task_execution.arn
  container_definitions = jsonencode([{
    name             = "cache"
    image            = local.image
    essential        = true
    command          = ["serve", "cache", "--port", "8002"]
    environment      = local.common_env
    portMappings     = [{ containerPort = 8002, protocol = "tcp" }]
    healthCheck      = { command = ["CMD", "/usr/local/bin/llmo", "healthcheck", "http://127.0.0.1:8002/ready"], interval = 10, timeout = 3, retries = 3 }
    stopTimeout      = local.stop_timeout
    logConfiguration = local.log_config["cache"]
  }])
}

resource "aws_ecs_task_definition" "storage" {
  family                   = "${local.name}-storage"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 1024
  execution_role_arn       = aws_iam_role.task_execution.arn
  volume {
    name = "models"
    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.models.id
      transit_encryption = "ENABLED"
      authorization_config {
        access_point_id = aws_efs_access_point.models.id
        iam             = "DISABLED"
      }
    }
  }
  container_definitions = jsonencode([{
    name             = "storage"
    image            = local.image
    essential        = true
    command          = ["serve", "storage", "--port", "8003", "--root", "/models/registry"]
    environment      = local.common_env
    portMappings     = [{ containerPort = 8003, protocol = "tcp" }]
    mountPoints      = [{ sourceVolume = "models", containerPath = "/models", readOnly = false }]
    healthCheck      = { command = ["CMD", "/usr/local/bin/llmo", "healthcheck", "http://127.0.0.1:8003/ready"], interval = 10, timeout = 3, retries = 3 }
    stopTimeout      = local.stop_timeout
    logConfiguration = local.log_config["storage"]
  }])
}

# --- services ---
resource "aws_ecs_service" "gateway" {
  name            = "gateway"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.gateway.arn
  desired_count   = var.gateway_count
  launch_type     = "FARGATE"
  network_configuration {
    subnets         = aws_subnet.private[*].id
    security_groups = [aws_security_group.services.id]
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.gateway.arn
    container_name   = "gateway"
    container_port   = 8000
  }
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  depends_on                         = [aws_lb_listener.http]
}

resource "aws_ecs_service" "model" {
  name            = "model"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.model.arn
  desired_count   = var.model_min_count
  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.gpu.name
    weight            = 1
  }
  network_configuration {
    subnets         = aws_subnet.private[*].id
    security_groups = [aws_security_group.services.id]
  }
  service_registries {
    registry_arn = aws_service_discovery_service.svc["model"].arn
  }
  lifecycle {
    ignore_changes = [desired_count] # owned by autoscaling
  }
}

resource "aws_ecs_service" "cache" {
  name            = "cache"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.cache.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  network_configuration {
    subnets         = aws_subnet.private[*].id
    security_groups = [aws_security_group.services.id]
  }
  service_registries {
    registry_arn = aws_service_discovery_service.svc["cache"].arn
  }
}

resource "aws_ecs_service" "storage" {
  name            = "storage"
  cluster         = aws_ecs_cluster.main.id
  task_definition = aws_ecs_task_definition.storage.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  network_configuration {
    subnets         = aws_subnet.private[*].id
    security_groups = [aws_security_group.services.id]
  }
  service_registries {
    registry_arn = aws_service_discovery_service.svc["storage"].arn
  }
}
